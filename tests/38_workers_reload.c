/*  tests/38_workers_reload.c — SIGHUP reloads a real api worker's
    connectors (sb-worker-fixtures --role api, sb_api_reload; the reload
    adds a builtin tool) while a job is in flight: jobs from then on run
    against the new set (a tool added, one removed), the job that started
    before finishes on the set it started with (the worker is built with
    ASan in the sanitizer build: a freed set read by that job aborts it,
    and the worker must exit 0), and a folder that fails to load leaves
    the worker on the set it had, with connectors_reload_failed logged.

    The worker's log (its stderr) goes to a file the test reads: a reload
    is an event there (connectors_reloaded, with the number of calls still
    on the old set), so the test waits on it, never on time. */
#include "38_workers_fake.h"
#include "sb_harness.h"

#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS       10000     /* longest wait for something that must happen */
#define UPSTREAM_MS   4000      /* the in-flight job's upstream delay */
#define MAX_RESULTS   8         /* results that came before the one awaited */

static fake_upstream_t *s_up;
static fake_broker_t *s_broker;
static pid_t s_worker = -1;
static char s_dir [128];        /* the worker's connectors folder */
static char s_log [160];        /* its stderr */

/*  Results that arrived while the test awaited another. */
static struct {
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    sb_status_t status;
    char *json;
} s_early [MAX_RESULTS];

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_pause (void)
{
    struct timespec pause = { 0, 10 * 1000000 };
    nanosleep (&pause, NULL);       //  between two looks at a file or counter
}

//  The RESULT of `corr_id`, in whatever order results come. Returns its
//  JSON (caller frees) with *status.
static char *
s_result (const char *corr_id, sb_status_t *status)
{
    for (int i = 0; i < MAX_RESULTS; i++)
        if (s_early [i].json && strcmp (s_early [i].corr_id, corr_id) == 0) {
            char *json = s_early [i].json;
            *status = s_early [i].status;
            s_early [i].json = NULL;
            return json;
        }
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (s_now_ms () < deadline) {
        sb_msg_t msg = { 0 };
        if (fake_broker_recv (s_broker, &msg, (int) (deadline - s_now_ms ())))
            break;
        char *json = NULL;
        if (msg.command == SB_CMD_RESULT && msg.payload) {
            sb_job_result_t result = { 0 };
            if (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &result) == 0)
                json = result.result, result.result = NULL;
            sb_job_result_clear (&result);
        }
        if (json && strcmp (msg.corr_id, corr_id) == 0) {
            *status = msg.status;
            sb_msg_reset (&msg);
            return json;
        }
        for (int i = 0; json && i < MAX_RESULTS; i++)
            if (!s_early [i].json) {
                snprintf (s_early [i].corr_id, sizeof s_early [i].corr_id, "%s", msg.corr_id);
                s_early [i].status = msg.status;
                s_early [i].json = json;
                json = NULL;
            }
        free (json);
        sb_msg_reset (&msg);
    }
    fail_msg ("no RESULT for %s", corr_id);
    return NULL;
}

//  Sends tools/call `tool` and returns its result (caller frees).
static char *
s_call (const char *corr_id, const char *tool, const char *args, sb_status_t *status)
{
    assert_int_equal (fake_broker_send_op (s_broker, corr_id, 20000, 0, "tools/call", tool, args), 0);
    return s_result (corr_id, status);
}

//  How many times the worker's log holds `text` so far.
static int
s_log_count (const char *text)
{
    FILE *file = fopen (s_log, "r");
    if (!file)
        return 0;
    char line [4096];
    int count = 0;
    while (fgets (line, sizeof line, file))
        count += strstr (line, text) != NULL;
    fclose (file);
    return count;
}

//  Waits until the log holds `text` `count` times; returns the last such line.
static char *
s_wait_log (const char *text, int count)
{
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (s_log_count (text) < count && s_now_ms () < deadline)
        s_pause ();
    assert_int_equal (s_log_count (text), count);
    FILE *file = fopen (s_log, "r");
    char line [4096], *last = NULL;
    while (fgets (line, sizeof line, file))
        if (strstr (line, text)) {
            free (last);
            last = strdup (line);
        }
    fclose (file);
    return last;
}

static void
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    assert_non_null (in);
    assert_non_null (out);
    char buffer [8192];
    size_t n;
    while ((n = fread (buffer, 1, sizeof buffer, in)) > 0)
        assert_int_equal (fwrite (buffer, 1, n, out), n);
    fclose (in);
    fclose (out);
}

static void
s_write_file (const char *name, const char *text)
{
    char path [256], temp [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    snprintf (temp, sizeof temp, "%s/.%s.tmp", s_dir, name);
    FILE *file = fopen (temp, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (rename (temp, path), 0);
}

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    s_up = fake_upstream_new ();
    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_up);
    assert_non_null (s_broker);

    //  The sandbox CRM's definition and its widget, in a folder of our own.
    char path [256], from [256];
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-38-reload-%d", (int) getpid ());
    snprintf (path, sizeof path, "%s/widgets", s_dir);
    assert_int_equal (mkdir (s_dir, 0700), 0);
    assert_int_equal (mkdir (path, 0700), 0);
    snprintf (from, sizeof from, "%s/connectors/sandbox-crm.json", SB_SOURCE_DIR);
    snprintf (path, sizeof path, "%s/sandbox-crm.json", s_dir);
    s_copy (from, path);
    snprintf (from, sizeof from, "%s/connectors/widgets/card-list.html", SB_SOURCE_DIR);
    snprintf (path, sizeof path, "%s/widgets/card-list.html", s_dir);
    s_copy (from, path);

    char urls [128];
    snprintf (urls, sizeof urls, "sandbox-crm=%s", fake_upstream_url (s_up));
    const char *argv [] = {
        sb_harness_bin ("sb-worker-fixtures"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", "4", "--heartbeat-ms", "500", "--connectors", s_dir,
        "--connector-urls", urls, NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=test-token", NULL };
    //  The worker's stderr (its log) goes to a file.
    snprintf (s_log, sizeof s_log, "/tmp/sb-38-reload-%d.log", (int) getpid ());
    s_worker = sb_harness_spawn_logged (argv, env, s_log);
    assert_true (s_worker > 0);

    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
    return 0;
}

static int
s_teardown (void **state)
{
    int status = s_worker > 0? sb_harness_stop (s_worker): -1;
    //  The worker's log, for whoever reads the test's output.
    FILE *file = fopen (s_log, "r");
    char line [4096];
    while (file && fgets (line, sizeof line, file))
        fprintf (stderr, "[worker] %s", line);
    if (file)
        fclose (file);
    fake_broker_destroy (&s_broker);
    fake_upstream_destroy (&s_up);
    for (int i = 0; i < MAX_RESULTS; i++)
        free (s_early [i].json);
    const char *names [] = { "sandbox-crm.json", "broken.json", "widgets/card-list.html",
                             NULL };
    char path [256];
    for (int i = 0; names [i]; i++) {
        snprintf (path, sizeof path, "%s/%s", s_dir, names [i]);
        unlink (path);
    }
    snprintf (path, sizeof path, "%s/widgets", s_dir);
    rmdir (path);
    rmdir (s_dir);
    unlink (s_log);
    //  Exit 0 after SIGTERM: no sanitizer report in the worker.
    return status == 0? 0: -1;
}

static void
test_reload_with_job_in_flight (void **state)
{
    //  A search whose upstream answers slowly: in flight across the reload.
    fake_upstream_set_delay (s_up, UPSTREAM_MS);
    assert_int_equal (fake_broker_send_op (s_broker, "old-1", 30000, 0, "tools/call",
                                           "search_accounts", "{\"query\":\"acme\"}"), 0);
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (fake_upstream_requests (s_up) < 1 && s_now_ms () < deadline)
        s_pause ();
    assert_int_equal (fake_upstream_requests (s_up), 1);

    //  The new definition: search_accounts gone, a builtin tool added.
    char path [256];
    snprintf (path, sizeof path, "%s/sandbox-crm.json", s_dir);
    json_t *crm = json_load_file (path, 0, NULL);
    assert_non_null (crm);
    json_t *tools = json_object_get (crm, "tools");
    size_t index;
    json_t *tool;
    json_array_foreach (tools, index, tool)
        if (strcmp (json_string_value (json_object_get (tool, "name")), "search_accounts") == 0)
            break;
    assert_true (index < json_array_size (tools));
    json_array_remove (tools, index);
    json_array_append_new (tools, json_pack ("{s:s, s:s, s:{s:s}, s:{s:s}}", "name", "reloaded_tool",
                           "description", "Added by a reload", "inputSchema", "type", "object",
                           "request", "builtin", "test_simple_text"));
    char *text = json_dumps (crm, JSON_INDENT (2));
    json_decref (crm);
    s_write_file ("sandbox-crm.json", text);
    free (text);

    assert_int_equal (kill (s_worker, SIGHUP), 0);
    char *line = s_wait_log ("\"connectors_reloaded\"", 1);
    //  The search was still running on the old set when it was replaced.
    assert_non_null (strstr (line, "calls_on_old_set=1"));
    free (line);

    sb_status_t status;
    char *json = s_call ("new-1", "reloaded_tool", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (strstr (json, "\"content\""));
    assert_null (strstr (json, "\"isError\":true"));
    free (json);
    json = s_call ("new-2", "search_accounts", "{\"query\":\"acme\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (strstr (json, "unknown_tool"));
    free (json);

    //  The old job ends as it would have: mapped by the tool it started with.
    json = s_result ("old-1", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (strstr (json, "structuredContent"));
    assert_null (strstr (json, "\"isError\":true"));
    free (json);
    fake_upstream_set_delay (s_up, 0);
    assert_true (sb_harness_alive (s_worker));
}

static void
test_failed_reload_keeps_set (void **state)
{
    s_write_file ("broken.json", "{\"name\": ");
    assert_int_equal (kill (s_worker, SIGHUP), 0);
    char *line = s_wait_log ("\"connectors_reload_failed\"", 1);
    assert_non_null (strstr (line, "broken.json"));
    assert_non_null (strstr (line, "loaded before stay"));
    free (line);
    sb_status_t status;
    char *json = s_call ("kept-1", "reloaded_tool", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_null (strstr (json, "\"isError\":true"));
    free (json);
    json = s_call ("kept-2", "get_account", "{\"id\":\"acc_001\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_null (strstr (json, "unknown_tool"));
    free (json);

    //  Well-formed JSON that breaks the connector format is refused the
    //  same way, the log naming the file, the JSON pointer and the rule.
    s_write_file ("broken.json",
        "{\"name\":\"broken\",\"title\":\"B\",\"base_url\":\"http://127.0.0.1:1\","
        " \"tools\":[{\"name\":\"broken_tool\",\"description\":\"d\","
        "   \"inputSchema\":{\"type\":\"object\"},\"request\":{\"method\":\"FETCH\",\"path\":\"/x\"},"
        "   \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}");
    assert_int_equal (kill (s_worker, SIGHUP), 0);
    line = s_wait_log ("\"connectors_reload_failed\"", 2);
    assert_non_null (strstr (line, "broken.json: /tools/0/request/method: must be one of"));
    assert_non_null (strstr (line, "(enum)"));
    free (line);
    json = s_call ("kept-3", "get_account", "{\"id\":\"acc_001\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_null (strstr (json, "unknown_tool"));
    free (json);
    json = s_call ("kept-4", "broken_tool", "{}", &status);
    assert_non_null (strstr (json, "unknown_tool"));
    free (json);

    //  Fixed: the next SIGHUP loads again.
    char path [256];
    snprintf (path, sizeof path, "%s/broken.json", s_dir);
    unlink (path);
    assert_int_equal (kill (s_worker, SIGHUP), 0);
    free (s_wait_log ("\"connectors_reloaded\"", 2));
    assert_true (sb_harness_alive (s_worker));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reload_with_job_in_flight),
        cmocka_unit_test (test_failed_reload_keeps_set),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
