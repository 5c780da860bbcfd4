/*  tests/sb_harness.c — the integration-test harness: free ports, starting
    the farm's real processes (fork/exec), waiting on them with deadlines,
    stopping them by PID, and a small blocking HTTP client (libcurl easy).
    Test support only: nothing in the product links it.

    Children get PR_SET_PDEATHSIG (SIGKILL), so a test that crashes or
    times out does not leave processes behind holding ports. */
#include "sb_harness.h"
#include "sb_attr.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SB_HARNESS_MAX_BODY     (16 * 1024 * 1024)  /* largest HTTP response kept, bytes */
#define SB_HARNESS_MAX_REAPED   64      /* exits remembered between alive() and stop() */
#define SB_HARNESS_BIN_SLOTS    8       /* sb_harness_bin results valid at once */
#define SB_HARNESS_POLL_MS      20      /* interval between readiness checks */
#define SB_HARNESS_STOP_MS      5000    /* SIGTERM grace before SIGKILL */

/*  A child that sb_harness_alive reaped, so sb_harness_stop can still
    report how it ended. */
typedef struct {
    pid_t pid;              /* the child, 0 when the slot is free */
    int status;             /* its waitpid status */
} s_reaped_t;

static s_reaped_t s_reaped [SB_HARNESS_MAX_REAPED];

int64_t
sb_harness_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sb_harness_pause_ms (int ms)
{
    poll (NULL, 0, ms);
}

static void
s_remember_exit (pid_t pid, int status)
{
    for (int i = 0; i < SB_HARNESS_MAX_REAPED; i++)
        if (s_reaped [i].pid == 0) {
            s_reaped [i].pid = pid;
            s_reaped [i].status = status;
            return;
        }
}

/*  The status of a child reaped earlier (and forgets it); -1 if unknown. */
static int
s_recall_exit (pid_t pid, int *status)
{
    for (int i = 0; i < SB_HARNESS_MAX_REAPED; i++)
        if (s_reaped [i].pid == pid) {
            *status = s_reaped [i].status;
            s_reaped [i].pid = 0;
            return 0;
        }
    return -1;
}

int
sb_harness_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
    &&  getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs (addr.sin_port);
    close (fd);
    return port;
}

const char *
sb_harness_bin (const char *name)
{
    static char slots [SB_HARNESS_BIN_SLOTS][PATH_MAX];
    static unsigned next;
    char *path = slots [next++ % SB_HARNESS_BIN_SLOTS];
    snprintf (path, PATH_MAX, "%s/%s", SB_BIN_DIR, name);
    return path;
}

pid_t
sb_harness_spawn (const char *const argv [], const char *const env [])
{
    if (!argv || !argv [0])
        return -1;
    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0)
        return pid;                 //  parent (or -1 when fork failed)

    //  Child: die with the test, take the extra environment, run.
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (127);                //  the test died between fork and prctl
    signal (SIGPIPE, SIG_DFL);
    for (size_t i = 0; env && env [i]; i++) {
        const char *equals = strchr (env [i], '=');
        if (!equals)
            continue;
        char name [256];
        size_t len = (size_t) (equals - env [i]);
        if (len == 0 || len >= sizeof name)
            continue;
        memcpy (name, env [i], len);
        name [len] = 0;
        setenv (name, equals + 1, 1);
    }
    execv (argv [0], sb_unconst (argv));
    fprintf (stderr, "sb_harness: cannot run %s: %s\n", argv [0], strerror (errno));
    _exit (127);
}

/*  True when a TCP connect to 127.0.0.1:port succeeds within `timeout_ms`. */
static bool
s_port_accepts (int port, int timeout_ms)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = false;
    int rc = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    if (rc == 0)
        ok = true;
    else
    if (errno == EINPROGRESS) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (poll (&pfd, 1, timeout_ms) == 1) {
            int error = 0;
            socklen_t len = sizeof error;
            ok = getsockopt (fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
        }
    }
    close (fd);
    return ok;
}

int
sb_harness_wait_port (int port, int timeout_ms)
{
    int64_t deadline = sb_harness_now_ms () + timeout_ms;
    while (true) {
        if (s_port_accepts (port, 200))
            return 0;
        if (sb_harness_now_ms () >= deadline)
            return -1;
        sb_harness_pause_ms (SB_HARNESS_POLL_MS);
    }
}

int
sb_harness_wait_http_ok (const char *url, int timeout_ms)
{
    int64_t deadline = sb_harness_now_ms () + timeout_ms;
    while (true) {
        long status = 0;
        int64_t left = deadline - sb_harness_now_ms ();
        int call_ms = left < 1000? (left > 50? (int) left: 50): 1000;
        if (sb_harness_http ("GET", url, NULL, NULL, 0, call_ms, &status, NULL) == 0
        &&  status == 200)
            return 0;
        if (sb_harness_now_ms () >= deadline)
            return -1;
        sb_harness_pause_ms (SB_HARNESS_POLL_MS);
    }
}

int
sb_harness_stop (pid_t pid)
{
    if (pid <= 0)
        return -1;
    int status;
    if (s_recall_exit (pid, &status) == 0)
        return status;
    if (kill (pid, SIGTERM) && errno == ESRCH)
        return -1;
    int64_t deadline = sb_harness_now_ms () + SB_HARNESS_STOP_MS;
    while (sb_harness_now_ms () < deadline) {
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid)
            return status;
        if (rc < 0)
            return -1;
        sb_harness_pause_ms (10);
    }
    fprintf (stderr, "sb_harness: pid %d ignored SIGTERM for %d ms; killing\n",
             (int) pid, SB_HARNESS_STOP_MS);
    kill (pid, SIGKILL);
    if (waitpid (pid, &status, 0) != pid)
        return -1;
    return status;
}

void
sb_harness_kill (pid_t pid)
{
    if (pid <= 0)
        return;
    int status;
    if (s_recall_exit (pid, &status) == 0)
        return;
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
}

bool
sb_harness_alive (pid_t pid)
{
    if (pid <= 0)
        return false;
    int status;
    pid_t rc = waitpid (pid, &status, WNOHANG);
    if (rc == 0)
        return true;
    if (rc == pid)
        s_remember_exit (pid, status);
    return false;
}

/*  Response body being received, bounded by SB_HARNESS_MAX_BODY. */
typedef struct {
    char *data;             /* bytes so far, NUL-terminated */
    size_t size;            /* bytes so far */
} s_body_t;

static size_t
s_on_body (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_body_t *body = userdata;
    size_t len = size * nmemb;
    if (body->size + len > SB_HARNESS_MAX_BODY)
        return 0;                   //  curl reports a write error
    char *data = realloc (body->data, body->size + len + 1);
    if (!data)
        return 0;
    memcpy (data + body->size, ptr, len);
    body->data = data;
    body->size += len;
    body->data [body->size] = 0;
    return len;
}

int
sb_harness_http (const char *method, const char *url, const char *const headers [],
                 const char *body, size_t body_len, int timeout_ms,
                 long *status, char **resp_body)
{
    static bool initialised;
    if (!initialised) {
        curl_global_init (CURL_GLOBAL_DEFAULT);
        initialised = true;
    }
    if (resp_body)
        *resp_body = NULL;
    if (status)
        *status = 0;
    CURL *curl = curl_easy_init ();
    if (!curl)
        return -1;
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers [i]; i++)
        list = curl_slist_append (list, headers [i]);
    s_body_t received = { NULL, 0 };

    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &received);
    if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
    }
    CURLcode result = curl_easy_perform (curl);
    long code = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all (list);
    curl_easy_cleanup (curl);

    if (result != CURLE_OK) {
        free (received.data);
        return -1;
    }
    if (status)
        *status = code;
    if (resp_body)
        *resp_body = received.data? received.data: strdup ("");
    else
        free (received.data);
    return 0;
}

char *
sb_harness_pg_conninfo (void)
{
    const char *path = getenv ("SB_TEST_PG_FILE");
    if (!path || !*path)
        path = SB_TEST_PG_FILE;
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "sb_harness: no test PostgreSQL (%s missing: did the "
                 "`postgres` fixture run?)\n", path);
        return NULL;
    }
    char line [1024];
    char *conninfo = NULL;
    if (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\r\n")] = 0;
        if (*line)
            conninfo = strdup (line);
    }
    fclose (file);
    return conninfo;
}
