/*  tests/35_sandbox_api.c — the real sb-sandbox process on a free port:
    search, get, pagination, 404, 401, 400, 405, 413, create task + 422,
    fault injection (status and delay; a delayed request does not hold up
    others), and survival of malformed requests. Ends with SIGTERM and
    checks the exit status is 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_connector.h"
#include "sb_harness.h"

#define API_KEY "test-key-35"
#define TIMEOUT_MS 10000

static int s_port;
static pid_t s_pid;
static char s_base [64];

static const char *const s_auth [] = { "Authorization: Bearer " API_KEY, NULL };
static const char *const s_auth_json [] = {
    "Authorization: Bearer " API_KEY, "Content-Type: application/json", NULL
};

static int
s_setup (void **state)
{
    s_port = sb_harness_free_port ();
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", s_port);
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", s_port);
    const char *argv [] = {
        sb_harness_bin ("sb-sandbox"), "--listen", listen, "--api-key", API_KEY, NULL
    };
    s_pid = sb_harness_spawn (argv, NULL);
    if (s_pid < 0)
        return -1;
    char url [128];
    snprintf (url, sizeof url, "%s/healthz", s_base);
    return sb_harness_wait_http_ok (url, SB_HARNESS_WAIT_MS);
}

static int
s_teardown (void **state)
{
    int status = sb_harness_stop (s_pid);
    if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
        fprintf (stderr, "sb-sandbox did not exit cleanly (status %d)\n", status);
        return -1;
    }
    return 0;
}

//  One request; returns the parsed JSON body (or NULL) and the status.
static json_t *
s_call (const char *method, const char *path, const char *const headers [],
        const char *body, long *status)
{
    char url [4096];
    snprintf (url, sizeof url, "%s%s", s_base, path);
    char *text = NULL;
    int rc = sb_harness_http (method, url, headers, body, body ? strlen (body) : 0,
                              TIMEOUT_MS, status, &text);
    assert_int_equal (rc, 0);
    json_t *json = text ? json_loads (text, 0, NULL) : NULL;
    free (text);
    return json;
}

//  Expects `status` and a JSON error body with `code`.
static void
s_expect_error (const char *method, const char *path, const char *const headers [],
                const char *body, long want, const char *code)
{
    long status = 0;
    json_t *json = s_call (method, path, headers, body, &status);
    if (status != want)
        fail_msg ("%s %s: HTTP %ld, want %ld", method, path, status, want);
    assert_non_null (json);
    assert_string_equal (json_string_value (json_object_get (json, "error")), code);
    assert_true (json_is_string (json_object_get (json, "message")));
    json_decref (json);
}

static void
test_search (void **state)
{
    long status;
    json_t *json = s_call ("GET", "/v1/accounts?q=ACME&limit=5", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    json_t *items = json_object_get (json, "items");
    assert_true (json_array_size (items) >= 1 && json_array_size (items) <= 5);
    size_t index;
    json_t *item;
    json_array_foreach (items, index, item) {
        assert_non_null (strcasestr (json_string_value (json_object_get (item, "name")), "acme"));
        //  A page holds each record as it is stored.
        char path [128];
        snprintf (path, sizeof path, "/v1/accounts/%s", json_string_value (json_object_get (item, "id")));
        json_t *record = s_call ("GET", path, s_auth, NULL, &status);
        assert_true (json_equal (record, item));
        json_decref (record);
    }
    json_int_t total = json_integer_value (json_object_get (json, "total"));
    assert_true (total >= 1);
    json_decref (json);
    //  Case is ignored on both sides, anywhere in the text.
    json = s_call ("GET", "/v1/accounts?q=aCmE&limit=5", s_auth, NULL, &status);
    assert_int_equal (json_integer_value (json_object_get (json, "total")), total);
    json_decref (json);
    json = s_call ("GET", "/v1/accounts?q=CME%20cOR&limit=5", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_string_equal (json_string_value (json_object_get (
        json_array_get (json_object_get (json, "items"), 0), "name")), "Acme Corp");
    json_decref (json);
    //  Non-ASCII text is compared as it is (no match here, no harm).
    json = s_call ("GET", "/v1/accounts?q=%C3%A9%C3%A9", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 0);
    json_decref (json);

    //  Contacts match on email and company too; a filter narrows.
    json = s_call ("GET", "/v1/contacts?q=.example&limit=1", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_int_equal (json_integer_value (json_object_get (json, "total")), 1000);
    json_decref (json);
    json = s_call ("GET", "/v1/opportunities?stage=closed_won&limit=100", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    json_array_foreach (json_object_get (json, "items"), index, item)
        assert_string_equal (json_string_value (json_object_get (item, "stage")), "closed_won");
    json_decref (json);
    //  Percent-encoded query values are decoded.
    json = s_call ("GET", "/v1/accounts?q=Pied%20Piper", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_true (json_array_size (json_object_get (json, "items")) >= 1);
    json_decref (json);
    json = s_call ("GET", "/v1/accounts?q=zzzz-nothing", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 0);
    assert_null (json_object_get (json, "next_cursor"));
    json_decref (json);
}

static void
test_pagination (void **state)
{
    json_t *seen = json_object ();
    char path [256] = "/v1/contacts?limit=100";
    int pages = 0;
    for (;;) {
        long status;
        json_t *json = s_call ("GET", path, s_auth, NULL, &status);
        assert_int_equal (status, 200);
        size_t index;
        json_t *item;
        json_array_foreach (json_object_get (json, "items"), index, item) {
            const char *id = json_string_value (json_object_get (item, "id"));
            assert_null (json_object_get (seen, id));
            json_object_set_new (seen, id, json_true ());
        }
        pages++;
        json_t *cursor = json_object_get (json, "next_cursor");
        if (!cursor) {
            json_decref (json);
            break;
        }
        assert_true (pages < 20);
        snprintf (path, sizeof path, "/v1/contacts?limit=100&cursor=%s", json_string_value (cursor));
        json_decref (json);
    }
    assert_int_equal (pages, 10);
    assert_int_equal (json_object_size (seen), 1000);
    json_decref (seen);

    //  Default page is 20.
    long status;
    json_t *json = s_call ("GET", "/v1/leads", s_auth, NULL, &status);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 20);
    json_decref (json);
    s_expect_error ("GET", "/v1/leads?limit=0", s_auth, NULL, 400, "bad_request");
    s_expect_error ("GET", "/v1/leads?limit=101", s_auth, NULL, 400, "bad_request");
    s_expect_error ("GET", "/v1/leads?limit=ten", s_auth, NULL, 400, "bad_request");
    s_expect_error ("GET", "/v1/leads?cursor=20", s_auth, NULL, 400, "bad_request");
    s_expect_error ("GET", "/v1/leads?q=%zz", s_auth, NULL, 400, "bad_request");
}

static void
test_get_and_404 (void **state)
{
    long status;
    json_t *json = s_call ("GET", "/v1/accounts/acc_0001", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_string_equal (json_string_value (json_object_get (json, "id")), "acc_0001");
    assert_true (json_is_string (json_object_get (json, "name")));
    json_decref (json);
    json = s_call ("GET", "/v1/opportunities/opp_0500", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_true (json_is_integer (json_object_get (json, "amount")));
    json_decref (json);

    s_expect_error ("GET", "/v1/accounts/acc_9999", s_auth, NULL, 404, "not_found");
    //  What the connector sends for a hostile ID is one segment: a plain 404.
    s_expect_error ("GET", "/v1/accounts/%2E%2E%2Fadmin", s_auth, NULL, 404, "not_found");
    s_expect_error ("GET", "/v1/accounts/acc_0001/extra", s_auth, NULL, 404, "not_found");
    s_expect_error ("GET", "/v1/widgets", s_auth, NULL, 404, "not_found");
    s_expect_error ("GET", "/nothing-here", s_auth, NULL, 404, "not_found");
    s_expect_error ("DELETE", "/v1/accounts", s_auth, NULL, 405, "method_not_allowed");
    s_expect_error ("PUT", "/v1/tasks", s_auth, "{}", 405, "method_not_allowed");
    s_expect_error ("POST", "/v1/accounts/acc_0001", s_auth, "{}", 405, "method_not_allowed");
    //  The OAuth provider is off without --oauth-client-id.
    s_expect_error ("POST", "/oauth/token", NULL, "grant_type=refresh_token", 404, "not_found");
    s_expect_error ("GET", "/_sandbox/oauth/grants", NULL, NULL, 404, "not_found");
}

static void
test_auth (void **state)
{
    const char *const wrong [] = { "Authorization: Bearer nope", NULL };
    const char *const basic [] = { "Authorization: Basic dGVzdDp0ZXN0", NULL };
    const char *const longer [] = { "Authorization: Bearer " API_KEY "x", NULL };
    s_expect_error ("GET", "/v1/accounts", NULL, NULL, 401, "unauthorized");
    s_expect_error ("GET", "/v1/accounts", wrong, NULL, 401, "unauthorized");
    s_expect_error ("GET", "/v1/accounts", basic, NULL, 401, "unauthorized");
    s_expect_error ("GET", "/v1/accounts/acc_0001", longer, NULL, 401, "unauthorized");
    s_expect_error ("POST", "/v1/tasks", NULL, "{\"title\":\"x\"}", 401, "unauthorized");
}

static void
test_create_task (void **state)
{
    long status;
    json_t *json = s_call ("POST", "/v1/tasks", s_auth_json,
                           "{\"title\":\"Call Acme about the renewal\",\"due_date\":\"2025-03-01\","
                           "\"priority\":\"high\",\"account_id\":\"acc_0001\"}", &status);
    assert_int_equal (status, 201);
    const char *id = json_string_value (json_object_get (json, "id"));
    assert_non_null (id);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "open");
    char path [128];
    snprintf (path, sizeof path, "/v1/tasks/%s", id);
    json_decref (json);
    json_t *task = s_call ("GET", path, s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_string_equal (json_string_value (json_object_get (task, "title")),
                         "Call Acme about the renewal");
    json = s_call ("GET", "/v1/tasks?q=renewal&account_id=acc_0001", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_true (json_array_size (json_object_get (json, "items")) >= 1);
    json_decref (json);
    //  A search finds a task created after start, in any case, as stored.
    json = s_call ("GET", "/v1/tasks?q=ACME%20About%20THE%20renewal", s_auth, NULL, &status);
    assert_int_equal (status, 200);
    assert_int_equal (json_integer_value (json_object_get (json, "total")), 1);
    assert_true (json_equal (json_array_get (json_object_get (json, "items"), 0), task));
    json_decref (json);
    json_decref (task);

    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"notes\":\"x\"}", 422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":\"\"}", 422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":\"x\",\"due_date\":\"2025-02-30\"}",
                    422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":\"x\",\"owner\":\"me\"}",
                    422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":\"x\",\"account_id\":\"acc_9999\"}",
                    422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":5}", 422, "validation_failed");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "{\"title\":", 400, "bad_request");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, "[1,2]", 400, "bad_request");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, NULL, 400, "bad_request");

    //  A body over the limit gets a JSON 413.
    size_t size = 100 * 1024;
    char *big = malloc (size + 32);
    int at = snprintf (big, size + 32, "{\"title\":\"");
    memset (big + at, 'a', size);
    snprintf (big + at + size, 32, "\"}");
    s_expect_error ("POST", "/v1/tasks", s_auth_json, big, 413, "payload_too_large");
    free (big);
}

static void
test_fault_status (void **state)
{
    long status;
    json_t *json = s_call ("POST", "/_sandbox/faults", NULL,
                           "{\"status\":503,\"count\":2,\"path_prefix\":\"/v1/accounts\"}", &status);
    assert_int_equal (status, 201);
    json_decref (json);
    s_expect_error ("GET", "/v1/accounts/acc_0001", s_auth, NULL, 503, "injected_fault");
    //  Other paths are untouched.
    json_decref (s_call ("GET", "/v1/contacts/con_0001", s_auth, NULL, &status));
    assert_int_equal (status, 200);
    s_expect_error ("GET", "/v1/accounts?q=a", s_auth, NULL, 503, "injected_fault");
    json_decref (s_call ("GET", "/v1/accounts/acc_0001", s_auth, NULL, &status));
    assert_int_equal (status, 200);

    //  429 carries retry_after; DELETE clears rules that have not run out.
    json_decref (s_call ("POST", "/_sandbox/faults", NULL,
                         "{\"status\":429,\"retry_after\":7}", &status));
    assert_int_equal (status, 201);
    json = s_call ("GET", "/v1/leads", s_auth, NULL, &status);
    assert_int_equal (status, 429);
    assert_int_equal (json_integer_value (json_object_get (json, "retry_after")), 7);
    json_decref (json);
    json = s_call ("DELETE", "/_sandbox/faults", NULL, NULL, &status);
    assert_int_equal (status, 200);
    json_decref (json);
    json_decref (s_call ("GET", "/v1/leads", s_auth, NULL, &status));
    assert_int_equal (status, 200);

    //  Bad fault definitions are refused.
    s_expect_error ("POST", "/_sandbox/faults", NULL, "{}", 400, "bad_request");
    s_expect_error ("POST", "/_sandbox/faults", NULL, "{\"status\":42}", 400, "bad_request");
    s_expect_error ("POST", "/_sandbox/faults", NULL, "{\"delay_ms\":-1}", 400, "bad_request");
    s_expect_error ("POST", "/_sandbox/faults", NULL, "{\"status\":503,\"colour\":1}", 400,
                    "bad_request");
    s_expect_error ("POST", "/_sandbox/faults", NULL, "nope", 400, "bad_request");

    json = s_call ("GET", "/_sandbox/stats", NULL, NULL, &status);
    assert_int_equal (status, 200);
    assert_true (json_integer_value (json_object_get (json, "faults_injected")) >= 3);
    assert_true (json_integer_value (json_object_get (json, "requests")) > 0);
    assert_true (json_integer_value (json_object_get (json_object_get (json, "by_status"), "5xx"))
                 >= 2);
    json_decref (json);
}

static long
s_ms_since (const struct timespec *start)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

//  A delayed request waits on a timer; a request sent after it is answered
//  first, so the loop is not blocked.
static void
test_fault_delay (void **state)
{
    long status;
    json_decref (s_call ("POST", "/_sandbox/faults", NULL,
                         "{\"delay_ms\":600,\"count\":1,\"path_prefix\":\"/v1/leads\"}", &status));
    assert_int_equal (status, 201);

    char slow_url [128], fast_url [128];
    snprintf (slow_url, sizeof slow_url, "%s/v1/leads/lead_0001", s_base);
    snprintf (fast_url, sizeof fast_url, "%s/v1/accounts/acc_0002", s_base);
    sb_harness_request_t slow_request = { .method = "GET", .url = slow_url,
                                          .headers = s_auth, .timeout_ms = TIMEOUT_MS };
    sb_harness_request_t fast_request = slow_request;
    fast_request.url = fast_url;
    struct timespec start;
    clock_gettime (CLOCK_MONOTONIC, &start);
    int64_t start_ms = sb_harness_now_ms ();
    sb_harness_call_t *slow = sb_harness_call_start (&slow_request);
    assert_non_null (slow);
    //  Wait until the server holds the slow request: its stats answer
    //  meanwhile, which already shows the delay does not block the loop.
    long delayed_now = 0;
    while (delayed_now == 0 && s_ms_since (&start) < TIMEOUT_MS) {
        json_t *stats = s_call ("GET", "/_sandbox/stats", NULL, NULL, &status);
        delayed_now = (long) json_integer_value (json_object_get (stats, "delayed_now"));
        json_decref (stats);
    }
    assert_int_equal (delayed_now, 1);
    sb_harness_call_t *fast = sb_harness_call_start (&fast_request);
    assert_non_null (fast);
    const sb_harness_response_t *slow_response, *fast_response;
    int64_t slow_done, fast_done;
    assert_int_equal (sb_harness_call_wait (fast, TIMEOUT_MS, false, &fast_response, &fast_done),
                      0);
    assert_int_equal (sb_harness_call_wait (slow, TIMEOUT_MS, false, &slow_response, &slow_done),
                      0);
    assert_int_equal (slow_response->status, 200);
    assert_int_equal (fast_response->status, 200);
    assert_true (fast_done < slow_done);                //  fast first
    assert_true (slow_done - start_ms >= 600);          //  slow waited its delay
    sb_harness_call_destroy (&slow);
    sb_harness_call_destroy (&fast);

    //  The rule ran out: the next request is immediate and nothing waits.
    json_decref (s_call ("GET", "/v1/leads/lead_0001", s_auth, NULL, &status));
    assert_int_equal (status, 200);
    json_t *json = s_call ("GET", "/_sandbox/stats", NULL, NULL, &status);
    assert_int_equal (json_integer_value (json_object_get (json, "delayed_now")), 0);
    json_decref (json);

    //  A delay with a status: waits, then fails.
    json_decref (s_call ("POST", "/_sandbox/faults", NULL,
                         "{\"delay_ms\":200,\"status\":504,\"count\":1}", &status));
    clock_gettime (CLOCK_MONOTONIC, &start);
    s_expect_error ("GET", "/v1/tasks", s_auth, NULL, 504, "injected_fault");
    assert_true (s_ms_since (&start) >= 200);
}

//  Raw bytes on a TCP connection; reads whatever comes back (bounded).
static void
s_raw (const char *bytes, size_t len)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    struct timeval tv = { .tv_sec = 2 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    //  The server may close before taking everything (that is its right
    //  with garbage), so a short or failed send is not a failure here.
    if (len && send (fd, bytes, len, MSG_NOSIGNAL) < 0)
        fprintf (stderr, "raw send ended early (server closed)\n");
    shutdown (fd, SHUT_WR);
    char buf [4096];
    while (recv (fd, buf, sizeof buf, 0) > 0)
        ;
    close (fd);
}

static void
test_malformed_requests (void **state)
{
    s_raw ("GARBAGE\r\n\r\n", 11);
    s_raw ("GET / HTTP/9.9\r\n\r\n", 18);
    s_raw ("POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nab", 66);
    s_raw ("GET /v1/accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 70);
    s_raw ("\0\1\2\3\4\5\6\7", 8);
    s_raw ("", 0);
    char *huge = malloc (200000);
    int at = snprintf (huge, 200000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset (huge + at, 'h', 200000 - (size_t) at - 5);
    memcpy (huge + 200000 - 5, "\r\n\r\n", 4);
    s_raw (huge, 200000 - 1);
    free (huge);
    s_expect_error ("GET", "/v1/accounts/%ZZ", s_auth, NULL, 400, "bad_request");

    //  Still alive and answering.
    assert_true (sb_harness_alive (s_pid));
    long status;
    json_decref (s_call ("GET", "/healthz", NULL, NULL, &status));
    assert_int_equal (status, 200);
}

//  Renders a connector tool, sends it, maps the answer: the connector in
//  connectors/ and the sandbox agree.
static json_t *
s_tool_call (sb_connectors_t *set, const char *tool_name, const char *args_text)
{
    const sb_tool_t *tool = sb_connectors_find_tool (set, tool_name);
    assert_non_null (tool);
    json_t *args = json_loads (args_text, 0, NULL);
    assert_non_null (args);
    char *error = NULL;
    if (sb_tool_check_args (tool, args, &error))
        fail_msg ("%s %s: %s", tool_name, args_text, error);
    sb_upstream_req_t req;
    if (sb_tool_render (tool, args, &req, &error))
        fail_msg ("%s %s: %s", tool_name, args_text, error);
    char *auth = sb_connector_auth_header (sb_tool_connector (tool));
    assert_non_null (auth);
    char auth_line [512];
    snprintf (auth_line, sizeof auth_line, "%s: %s",
              sb_connector_auth_header_name (sb_tool_connector (tool)), auth);
    const char *headers [] = { auth_line, "Content-Type: application/json", NULL };
    long status = 0;
    char *body = NULL;
    assert_int_equal (sb_harness_http (req.method, req.url, headers, req.body,
                                       req.body ? strlen (req.body) : 0, TIMEOUT_MS,
                                       &status, &body), 0);
    json_t *result = sb_tool_map_result (tool, status, body, body ? strlen (body) : 0);
    free (body);
    free (auth);
    sb_upstream_req_clear (&req);
    json_decref (args);
    return result;
}

static const char *
s_result_text (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result,
                                               "content"), 0), "text"));
}

static void
test_connector_roundtrip (void **state)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    assert_non_null (set);
    assert_int_equal (sb_connectors_set_base_url (set, "sandbox-crm", s_base), 0);
    setenv ("SB_SANDBOX_CRM_TOKEN", API_KEY, 1);

    const char *calls [][3] = {
        { "search_accounts", "{\"query\":\"acme\",\"limit\":3}", "Found 10 accounts: Acme" },
        { "get_account", "{\"id\":\"acc_0001\"}", "Account: " },
        { "search_contacts", "{\"query\":\"example\",\"limit\":2}", "Found 1000 contacts: " },
        { "get_contact", "{\"id\":\"con_0002\"}", "Contact: " },
        { "search_leads", "{\"status\":\"qualified\",\"limit\":1}", " leads: " },
        { "search_opportunities", "{\"stage\":\"proposal\"}", " opportunities: " },
        { "get_opportunity", "{\"id\":\"opp_0001\"}", "Opportunity: " },
        { "list_tasks", "{\"status\":\"open\",\"limit\":5}", " tasks: " },
        { "create_task", "{\"title\":\"Send the \\\"x\\\"} deck\",\"priority\":\"high\"}",
          "Created task: Send the \"x\"} deck (open" },
        { "search_accounts", "{\"query\":\"a&limit=100\"}", "Found 0 accounts." },
        { NULL }
    };
    for (int i = 0; calls [i][0]; i++) {
        json_t *result = s_tool_call (set, calls [i][0], calls [i][1]);
        if (!json_is_false (json_object_get (result, "isError"))
        ||  !strstr (s_result_text (result), calls [i][2]))
            fail_msg ("%s %s: %s", calls [i][0], calls [i][1], s_result_text (result));
        json_decref (result);
    }
    //  Hostile IDs stay one segment: a plain "not found", never another endpoint.
    const char *hostile [] = {
        "{\"id\":\"../accounts\"}", "{\"id\":\"acc_0001/../acc_0002\"}",
        "{\"id\":\"acc_0001?x=1\"}", "{\"id\":\"%2e%2e\"}", NULL
    };
    for (int i = 0; hostile [i]; i++) {
        json_t *result = s_tool_call (set, "get_account", hostile [i]);
        assert_true (json_is_true (json_object_get (result, "isError")));
        assert_string_equal (s_result_text (result), "No account with that ID exists.");
        json_decref (result);
    }
    //  Upstream trouble becomes a sentence.
    long status;
    json_decref (s_call ("POST", "/_sandbox/faults", NULL, "{\"status\":503,\"count\":1}", &status));
    json_t *result = s_tool_call (set, "get_account", "{\"id\":\"acc_0001\"}");
    assert_string_equal (s_result_text (result),
                         "The CRM is having problems right now (HTTP 503). Try again in a minute.");
    json_decref (result);
    setenv ("SB_SANDBOX_CRM_TOKEN", "wrong-key", 1);
    result = s_tool_call (set, "get_account", "{\"id\":\"acc_0001\"}");
    assert_string_equal (s_result_text (result),
                         "The CRM refused switchboard's credentials; an admin needs to re-connect it.");
    json_decref (result);
    sb_connectors_destroy (&set);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_search),
        cmocka_unit_test (test_pagination),
        cmocka_unit_test (test_get_and_404),
        cmocka_unit_test (test_auth),
        cmocka_unit_test (test_create_task),
        cmocka_unit_test (test_fault_status),
        cmocka_unit_test (test_fault_delay),
        cmocka_unit_test (test_connector_roundtrip),
        cmocka_unit_test (test_malformed_requests),
    };
    int rc = cmocka_run_group_tests (tests, s_setup, s_teardown);
    return rc;
}
