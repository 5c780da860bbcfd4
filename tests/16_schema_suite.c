/*  tests/16_schema_suite.c — the official JSON-Schema-Test-Suite
    (draft2020-12, vendored in tests/data/JSON-Schema-Test-Suite with its
    licence) run through schema/sb_schema, as data.

    tests/data/schema_suite.json says what to run and what to expect:
    "files", the suite's files to run; "refused", the keywords sb_schema
    refuses at load (as sb_schema.h documents them), each with the words
    its refusal says and, for a keyword the suite never uses, an example
    schema that must be refused; "failures", the suite's tests sb_schema
    gets wrong, each with why.

    For each case of each file the case's schema is compiled with
    sb_schema_new_any. A schema refused at load for one of the "refused"
    keywords counts its tests as refused and is printed; a schema refused
    for anything else is a failure. A schema that loads has every test's
    "valid" compared with sb_schema's verdict. The run fails on any
    mismatch not listed in "failures", on a listed failure that now
    passes, on a refusal no "refused" entry names, and on a "refused"
    entry nothing exercised: the list in the data stays exactly the list
    sb_schema refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_schema.h"

#define S_SUITE_DIR  SB_SOURCE_DIR "/tests/data/JSON-Schema-Test-Suite/"
#define S_EXPECTED   SB_SOURCE_DIR "/tests/data/schema_suite.json"
#define S_MAX_PATH   512            /* bytes of a suite file's path */

//  One run over the suite.
typedef struct {
    json_t *refused;                /* "refused" entries, borrowed from the data */
    json_t *failures;               /* "failures" entries, borrowed from the data */
    size_t *refused_seen;           /* schemas each "refused" entry named, owned */
    size_t *failure_seen;           /* times each "failures" entry failed, owned */
    size_t passed;                  /* tests whose verdict is the suite's */
    size_t refused_tests;           /* tests of schemas refused at load */
    size_t listed;                  /* tests failing as "failures" lists */
    size_t mismatches;              /* anything else: the run fails */
} s_run_t;

static const char *
s_text (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  The index of the "failures" entry for `file`, `case_name` and
//  `test_name` (NULL: the case's schema itself), or -1.
static long
s_listed (const s_run_t *run, const char *file, const char *case_name, const char *test_name)
{
    size_t index;
    json_t *entry;
    json_array_foreach (run->failures, index, entry) {
        const char *test = s_text (entry, "test");
        if (strcmp (s_text (entry, "file"), file) == 0
        &&  strcmp (s_text (entry, "case"), case_name) == 0
        &&  (test_name ? test && strcmp (test, test_name) == 0 : !test))
            return (long) index;
    }
    return -1;
}

//  The index of the "refused" entry whose words `why` contains, or -1.
static long
s_refusal (const s_run_t *run, const char *why)
{
    size_t index;
    json_t *entry;
    json_array_foreach (run->refused, index, entry)
        if (strstr (why, s_text (entry, "says")))
            return (long) index;
    return -1;
}

//  Runs one case: its schema compiled, then each of its tests.
static void
s_run_case (s_run_t *run, const char *file, const json_t *test_case)
{
    const char *case_name = s_text (test_case, "description");
    const json_t *tests = json_object_get (test_case, "tests");
    assert_non_null (case_name);
    assert_true (json_is_array (tests));
    char *why = NULL;
    sb_schema_t *checker = sb_schema_new_any (json_object_get (test_case, "schema"), "suite",
                                              &why);
    if (!checker) {
        long refusal = s_refusal (run, why);
        long listed = s_listed (run, file, case_name, NULL);
        if (refusal >= 0) {
            run->refused_seen [refusal]++;
            run->refused_tests += json_array_size (tests);
            printf ("refused   %s: %s (%s)\n", file, case_name,
                    s_text (json_array_get (run->refused, (size_t) refusal), "keyword"));
        }
        else
        if (listed >= 0) {
            run->failure_seen [listed]++;
            run->listed += json_array_size (tests);
            printf ("listed    %s: %s: %s\n", file, case_name, why);
        }
        else {
            run->mismatches++;
            printf ("MISMATCH  %s: %s: refused at load for no listed keyword: %s\n",
                    file, case_name, why);
        }
        free (why);
        return;
    }
    size_t index;
    json_t *test;
    json_array_foreach (tests, index, test) {
        const char *test_name = s_text (test, "description");
        const json_t *valid = json_object_get (test, "valid");
        assert_non_null (test_name);
        assert_true (json_is_boolean (valid));
        char *error = NULL;
        int rc = sb_schema_check_compiled (checker, json_object_get (test, "data"), &error);
        bool verdict = rc == 0;
        long listed = s_listed (run, file, case_name, test_name);
        if (verdict == json_is_true (valid))
            run->passed++;
        else
        if (listed >= 0) {
            run->failure_seen [listed]++;
            run->listed++;
        }
        else {
            run->mismatches++;
            printf ("MISMATCH  %s: %s / %s: the suite says %s, sb_schema says %s\n",
                    file, case_name, test_name, json_is_true (valid) ? "valid" : "invalid",
                    error ? error : "valid");
        }
        free (error);
    }
    sb_schema_destroy (&checker);
}

//  Every "refused" entry with an example: the example must be refused,
//  for that entry's reason.
static void
s_run_examples (s_run_t *run)
{
    size_t index;
    json_t *entry;
    json_array_foreach (run->refused, index, entry) {
        const json_t *example = json_object_get (entry, "example");
        if (!example)
            continue;
        char *why = NULL;
        sb_schema_t *checker = sb_schema_new_any (example, "example", &why);
        if (checker || s_refusal (run, why) != (long) index) {
            run->mismatches++;
            printf ("MISMATCH  the example of refused %s: %s\n", s_text (entry, "keyword"),
                    why ? why : "loads");
        }
        else
            run->refused_seen [index]++;
        free (why);
        sb_schema_destroy (&checker);
    }
}

static void
test_suite (void **state)
{
    (void) state;
    json_error_t error;
    json_t *expected = json_load_file (S_EXPECTED, 0, &error);
    if (!expected)
        fail_msg ("%s: %s (line %d)", S_EXPECTED, error.text, error.line);
    s_run_t run = { .refused = json_object_get (expected, "refused"),
                    .failures = json_object_get (expected, "failures") };
    const json_t *files = json_object_get (expected, "files");
    assert_true (json_is_array (run.refused) && json_is_array (run.failures));
    assert_true (json_is_array (files) && json_array_size (files) > 0);
    size_t index;
    json_t *entry;
    json_array_foreach (run.refused, index, entry)
        assert_true (s_text (entry, "keyword") && s_text (entry, "says") && s_text (entry, "why"));
    json_array_foreach (run.failures, index, entry)
        assert_true (s_text (entry, "file") && s_text (entry, "case") && s_text (entry, "why"));
    run.refused_seen = calloc (json_array_size (run.refused) + 1, sizeof (size_t));
    run.failure_seen = calloc (json_array_size (run.failures) + 1, sizeof (size_t));
    assert_true (run.refused_seen && run.failure_seen);

    json_array_foreach (files, index, entry) {
        char path [S_MAX_PATH];
        assert_true (json_is_string (entry));
        int length = snprintf (path, sizeof path, "%s%s", S_SUITE_DIR, json_string_value (entry));
        assert_true (length > 0 && (size_t) length < sizeof path);
        json_t *cases = json_load_file (path, JSON_ALLOW_NUL, &error);
        if (!cases)
            fail_msg ("%s: %s (line %d)", path, error.text, error.line);
        assert_true (json_is_array (cases));
        size_t number;
        json_t *test_case;
        json_array_foreach (cases, number, test_case)
            s_run_case (&run, json_string_value (entry), test_case);
        json_decref (cases);
    }
    s_run_examples (&run);

    //  The lists in the data must stay true.
    json_array_foreach (run.refused, index, entry) {
        printf ("refused keyword %-22s %zu schemas: %s\n", s_text (entry, "keyword"),
                run.refused_seen [index], s_text (entry, "why"));
        if (!run.refused_seen [index]) {
            run.mismatches++;
            printf ("MISMATCH  refused keyword %s: nothing was refused for it\n",
                    s_text (entry, "keyword"));
        }
    }
    json_array_foreach (run.failures, index, entry)
        if (!run.failure_seen [index]) {
            run.mismatches++;
            printf ("MISMATCH  listed failure %s: %s / %s now passes (or is gone): "
                    "take it off the list\n", s_text (entry, "file"), s_text (entry, "case"),
                    s_text (entry, "test") ? s_text (entry, "test") : "(schema)");
        }
    printf ("suite: %zu tests pass, %zu in schemas refused at load, %zu listed failures, "
            "%zu mismatches\n", run.passed, run.refused_tests, run.listed, run.mismatches);
    free (run.refused_seen);
    free (run.failure_seen);
    json_decref (expected);
    assert_int_equal (run.mismatches, 0);
    assert_true (run.passed > 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_suite),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
