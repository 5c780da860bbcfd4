/*  tests/50_harness_selftest.c — the test harness checked on its own:
    free ports, spawning with extra environment, exit statuses through
    alive/stop/kill, SIGTERM escalation to SIGKILL, waiting on a port, and
    the HTTP helper against a tiny HTTP server forked by this test. */
#include "sb_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_REQUEST   65536   /* largest request the tiny server reads */

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Child: answers HTTP/1.1 requests on `fd` one connection at a time.
    GET /ok → 200 "ok"; POST /echo → 200 with the body; else 404. */
static void
s_tiny_server (int fd)
{
    static char request [S_MAX_REQUEST + 1];
    while (true) {
        int client = accept (fd, NULL, NULL);
        if (client < 0)
            _exit (1);
        size_t size = 0;
        char *end = NULL;
        while (!end && size < S_MAX_REQUEST) {
            ssize_t got = read (client, request + size, S_MAX_REQUEST - size);
            if (got <= 0)
                break;
            size += (size_t) got;
            request [size] = 0;
            end = strstr (request, "\r\n\r\n");
        }
        if (!end) {
            close (client);
            continue;
        }
        size_t length = 0;
        const char *field = strcasestr (request, "Content-Length:");
        if (field)
            length = strtoul (field + 15, NULL, 10);
        size_t header = (size_t) (end + 4 - request);
        while (size < header + length && size < S_MAX_REQUEST) {
            ssize_t got = read (client, request + size, S_MAX_REQUEST - size);
            if (got <= 0)
                break;
            size += (size_t) got;
        }
        char reply [S_MAX_REQUEST + 256];
        int len;
        if (strncmp (request, "GET /ok ", 8) == 0)
            len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                            "Connection: close\r\n\r\nok");
        else
        if (strncmp (request, "POST /echo ", 11) == 0)
            len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%.*s", length, (int) length, request + header);
        else
            len = snprintf (reply, sizeof reply, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n");
        if (write (client, reply, (size_t) len) < 0)
            _exit (1);
        close (client);
    }
}

static void
test_free_port_and_bin (void **state)
{
    int port = sb_harness_free_port ();
    assert_in_range (port, 1024, 65535);
    assert_int_equal (sb_harness_wait_port (port, 100), -1);     //  nothing listens
    const char *a = sb_harness_bin ("sb-broker");
    const char *b = sb_harness_bin ("sb-gateway");
    assert_string_equal (a, SB_BIN_DIR "/sb-broker");
    assert_string_equal (b, SB_BIN_DIR "/sb-gateway");
}

static void
test_spawn_env_and_exit_status (void **state)
{
    const char *argv [] = { "/bin/sh", "-c", "test \"$SB_X\" = yes && exit 3; exit 4", NULL };
    const char *env [] = { "SB_X=yes", NULL };
    pid_t pid = sb_harness_spawn (argv, env);
    assert_true (pid > 0);
    int64_t deadline = s_now_ms () + 5000;
    while (sb_harness_alive (pid) && s_now_ms () < deadline)
        poll (NULL, 0, 10);
    assert_false (sb_harness_alive (pid));
    int status = sb_harness_stop (pid);          //  remembered by alive()
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 3);

    const char *missing [] = { "/nonexistent/sb-nothing", NULL };
    pid = sb_harness_spawn (missing, NULL);
    assert_true (pid > 0);
    status = sb_harness_stop (pid);
    assert_true ((WIFEXITED (status) && WEXITSTATUS (status) == 127)
              || (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM));
}

static void
test_stop_escalates_to_kill (void **state)
{
    //  A process that ignores SIGTERM (ignored signals survive exec).
    const char *argv [] = { "/bin/sh", "-c", "trap '' TERM; exec sleep 30", NULL };
    pid_t pid = sb_harness_spawn (argv, NULL);
    assert_true (pid > 0);
    assert_true (sb_harness_alive (pid));
    poll (NULL, 0, 100);            //  let the shell reach `trap` (only delays the test)
    int64_t start = s_now_ms ();
    int status = sb_harness_stop (pid);
    assert_true (WIFSIGNALED (status));
    assert_int_equal (WTERMSIG (status), SIGKILL);
    assert_true (s_now_ms () - start < 8000);
    assert_false (sb_harness_alive (pid));

    const char *sleeper [] = { "/bin/sleep", "30", NULL };
    pid = sb_harness_spawn (sleeper, NULL);
    assert_true (sb_harness_alive (pid));
    sb_harness_kill (pid);
    assert_false (sb_harness_alive (pid));
}

static void
test_http_helper (void **state)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    int port = ntohs (addr.sin_port);
    assert_int_equal (listen (fd, 16), 0);
    pid_t server = fork ();
    assert_true (server >= 0);
    if (server == 0)
        s_tiny_server (fd);
    close (fd);

    char url [128];
    assert_int_equal (sb_harness_wait_port (port, 5000), 0);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", port);
    assert_int_equal (sb_harness_wait_http_ok (url, 5000), 0);

    long status = 0;
    char *body = NULL;
    const char *headers [] = { "Content-Type: application/json", NULL };
    snprintf (url, sizeof url, "http://127.0.0.1:%d/echo", port);
    assert_int_equal (sb_harness_http ("POST", url, headers, "{\"a\":1}", 7, 5000,
                                       &status, &body), 0);
    assert_int_equal (status, 200);
    assert_string_equal (body, "{\"a\":1}");
    free (body);

    snprintf (url, sizeof url, "http://127.0.0.1:%d/missing", port);
    assert_int_equal (sb_harness_http ("GET", url, NULL, NULL, 0, 5000, &status, NULL), 0);
    assert_int_equal (status, 404);
    assert_int_equal (sb_harness_wait_http_ok (url, 200), -1);

    sb_harness_kill (server);
    //  Nothing listens any more: a transport error, not a status.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", port);
    assert_int_equal (sb_harness_http ("GET", url, NULL, NULL, 0, 2000, &status, &body), -1);
    assert_null (body);
}

static void
test_pg_conninfo (void **state)
{
    //  The file is read as given by SB_TEST_PG_FILE (env overrides the build's path).
    char path [] = "/tmp/sb-harness-conninfo-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    const char text [] = "host=127.0.0.1 port=1 dbname=switchboard user=switchboard\n";
    assert_int_equal (write (fd, text, sizeof text - 1), (ssize_t) sizeof text - 1);
    close (fd);
    setenv ("SB_TEST_PG_FILE", path, 1);
    char *conninfo = sb_harness_pg_conninfo ();
    assert_string_equal (conninfo, "host=127.0.0.1 port=1 dbname=switchboard user=switchboard");
    free (conninfo);
    unlink (path);
    assert_null (sb_harness_pg_conninfo ());
    unsetenv ("SB_TEST_PG_FILE");
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_free_port_and_bin),
        cmocka_unit_test (test_spawn_env_and_exit_status),
        cmocka_unit_test (test_stop_escalates_to_kill),
        cmocka_unit_test (test_http_helper),
        cmocka_unit_test (test_pg_conninfo),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
