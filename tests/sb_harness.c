/*  tests/sb_harness.c — the integration-test harness: free ports, starting
    the farm's real processes (fork/exec), waiting on them with deadlines,
    stopping them by PID, and the one HTTP client of the tests (libcurl easy).
    Test support only: nothing in the product links it.

    Children get PR_SET_PDEATHSIG (SIGKILL), so a test that crashes or
    times out does not leave processes behind holding ports. */
#include "sb_harness.h"
#include "sb_attr.h"
#include "sb_crypto.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SB_HARNESS_MAX_BODY     (16 * 1024 * 1024)  /* largest HTTP response kept, bytes */
#define SB_HARNESS_MAX_HEADERS  (64 * 1024)         /* largest block of response headers kept */
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
sb_harness_write_key (const char *path)
{
    uint8_t key [32];
    char hex [2 * sizeof key + 1];
    if (sb_crypto_random (key, sizeof key))
        return -1;
    sb_hex_encode (key, sizeof key, hex);
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    int rc = fprintf (file, "%s\n", hex) > 0? 0: -1;
    return fclose (file) == 0? rc: -1;
}

//  A port bound then released may come back from the next bind to port
//  0 before whoever got it first has bound it again (seen: a sandbox and
//  a broker of one test given the same port). So a port handed out is
//  remembered, and never handed out again by this process.
#define S_PORTS_REMEMBERED  256
#define S_PORT_TRIES        32

static int
s_bind_any (void)
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

int
sb_harness_free_port (void)
{
    static int given [S_PORTS_REMEMBERED];
    static size_t count;
    for (int tries = 0; tries < S_PORT_TRIES; tries++) {
        int port = s_bind_any ();
        if (port < 0)
            return -1;
        bool seen = false;
        for (size_t i = 0; i < count && i < S_PORTS_REMEMBERED; i++)
            if (given [i] == port)
                seen = true;
        if (!seen) {
            given [count++ % S_PORTS_REMEMBERED] = port;
            return port;
        }
    }
    return -1;
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

pid_t
sb_harness_spawn_logged (const char *const argv [], const char *const env [], const char *log)
{
    //  The child inherits fd 2: it is the log file while the child is made.
    int log_fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (log_fd < 0)
        return -1;
    int saved = dup (2);
    fflush (stderr);
    dup2 (log_fd, 2);
    pid_t pid = sb_harness_spawn (argv, env);
    dup2 (saved, 2);
    close (saved);
    close (log_fd);
    return pid;
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

static void
s_curl_init (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
}

//  Appends `n` bytes to a growing NUL-terminated buffer of at most `limit`
//  bytes; false when it would pass the limit or there is no memory.
static bool
s_append (char **data, size_t *size, const char *bytes, size_t n, size_t limit)
{
    if (*size + n > limit)
        return false;
    char *grown = realloc (*data, *size + n + 1);
    if (!grown)
        return false;
    memcpy (grown + *size, bytes, n);
    *data = grown;
    *size += n;
    (*data) [*size] = 0;
    return true;
}

//  One exchange in progress: what curl's callbacks write to.
typedef struct {
    const sb_harness_request_t *request;    /* what is sent */
    sb_harness_response_t *response;        /* what came, written under request->lock */
} s_exchange_t;

static void
s_lock (const s_exchange_t *exchange)
{
    if (exchange->request->lock)
        pthread_mutex_lock (exchange->request->lock);
}

static void
s_unlock (const s_exchange_t *exchange)
{
    if (exchange->request->lock)
        pthread_mutex_unlock (exchange->request->lock);
}

static size_t
s_on_body (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_exchange_t *exchange = userdata;
    sb_harness_response_t *response = exchange->response;
    s_lock (exchange);
    bool kept = s_append (&response->body, &response->body_len, ptr, size * nmemb,
                          SB_HARNESS_MAX_BODY);
    if (exchange->request->progress)
        pthread_cond_broadcast (exchange->request->progress);
    s_unlock (exchange);
    return kept ? size * nmemb : 0;     //  0: curl reports a write error
}

static size_t
s_on_header (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_exchange_t *exchange = userdata;
    sb_harness_response_t *response = exchange->response;
    s_lock (exchange);
    bool kept = s_append (&response->headers, &response->headers_len, ptr, size * nmemb,
                          SB_HARNESS_MAX_HEADERS);
    if (exchange->request->progress)
        pthread_cond_broadcast (exchange->request->progress);
    s_unlock (exchange);
    return kept ? size * nmemb : 0;
}

//  Curl calls this at least once a second, data or not: the way to leave.
static int
s_on_progress (void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
    (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
    s_exchange_t *exchange = userdata;
    s_lock (exchange);
    bool leave = *exchange->request->hang_up;
    s_unlock (exchange);
    return leave ? 1 : 0;
}

int
sb_harness_request (const sb_harness_request_t *request, sb_harness_response_t *response)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_curl_init);
    s_exchange_t exchange = { request, response };
    s_lock (&exchange);
    *response = (sb_harness_response_t) { 0 };
    s_unlock (&exchange);
    CURL *curl = curl_easy_init ();
    if (!curl)
        return CURLE_FAILED_INIT;
    //  No "Expect: 100-continue": one response, one block of headers.
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    for (size_t i = 0; request->headers && request->headers [i]; i++)
        list = curl_slist_append (list, request->headers [i]);
    curl_easy_setopt (curl, CURLOPT_URL, request->url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, request->method);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS,
                      (long) (request->timeout_ms > 0 ? request->timeout_ms
                                                       : SB_HARNESS_HTTP_TIMEOUT_MS));
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &exchange);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &exchange);
    if (strcmp (request->method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    if (request->body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, request->body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->body_len);
    }
    if (request->http2) {
        curl_easy_setopt (curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        curl_easy_setopt (curl, CURLOPT_PIPEWAIT, 1L);
    }
    if (request->hang_up) {
        curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
        curl_easy_setopt (curl, CURLOPT_XFERINFODATA, &exchange);
        curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode result = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (list);
    curl_easy_cleanup (curl);
    s_lock (&exchange);
    response->status = status;
    s_unlock (&exchange);
    return (int) result;
}

bool
sb_harness_header (const sb_harness_response_t *response, const char *name, char *value,
                   size_t size)
{
    if (size)
        value [0] = 0;
    size_t name_len = strlen (name);
    bool found = false;
    const char *line = response->headers;
    while (line && *line) {
        const char *next = strchr (line, '\n');
        size_t n = next ? (size_t) (next - line) : strlen (line);
        if (n > name_len && line [name_len] == ':' && strncasecmp (line, name, name_len) == 0) {
            const char *text = line + name_len + 1;
            size_t len = n - name_len - 1;
            while (len && *text == ' ')
                text++, len--;
            while (len && (text [len - 1] == '\r' || text [len - 1] == ' '))
                len--;
            if (size)
                snprintf (value, size, "%.*s", (int) len, text);
            found = true;               //  the last one wins
        }
        line = next ? next + 1 : NULL;
    }
    return found;
}

void
sb_harness_response_clear (sb_harness_response_t *response)
{
    free (response->headers);
    free (response->body);
    *response = (sb_harness_response_t) { 0 };
}

//  ---------------------------------------------------------------------------
//  A request in a thread of its own

#define SB_HARNESS_CALL_HEADERS 16      /* request headers a call copies */

struct _sb_harness_call_t {
    pthread_mutex_t lock;               /* guards response, done, done_ms, hang_up, rc */
    pthread_cond_t changed;             /* broadcast when response or done change */
    sb_harness_request_t request;       /* what is sent; strings below */
    char *url;                          /* the URL, owned */
    char *method;                       /* the method, owned */
    char *body;                         /* the body, owned, or NULL */
    char *headers [SB_HARNESS_CALL_HEADERS + 1];    /* the headers, owned, NULL-terminated */
    sb_harness_response_t response;     /* what came so far */
    bool hang_up;                       /* set to drop the connection */
    bool done;                          /* the request ended */
    int64_t done_ms;                    /* when it ended */
    int rc;                             /* what sb_harness_request returned */
    bool joined;                        /* the thread was joined */
    pthread_t thread;                   /* runs the request */
};

static void *
s_call_run (void *arg)
{
    sb_harness_call_t *self = arg;
    int rc = sb_harness_request (&self->request, &self->response);
    pthread_mutex_lock (&self->lock);
    self->rc = rc;
    self->done = true;
    self->done_ms = sb_harness_now_ms ();
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

sb_harness_call_t *
sb_harness_call_start (const sb_harness_request_t *request)
{
    sb_harness_call_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init (&attributes);
    pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
    pthread_cond_init (&self->changed, &attributes);
    pthread_condattr_destroy (&attributes);
    self->joined = true;
    self->request = *request;
    self->url = strdup (request->url);
    self->method = strdup (request->method);
    self->body = request->body ? malloc (request->body_len + 1) : NULL;
    if (self->body) {
        memcpy (self->body, request->body, request->body_len);
        self->body [request->body_len] = 0;
    }
    bool ok = self->url && self->method && (self->body || !request->body);
    for (size_t i = 0; request->headers && request->headers [i]; i++) {
        if (i == SB_HARNESS_CALL_HEADERS) {
            ok = false;
            break;
        }
        self->headers [i] = strdup (request->headers [i]);
        ok = ok && self->headers [i];
    }
    self->request.url = self->url;
    self->request.method = self->method;
    self->request.body = self->body;
    self->request.headers = (const char *const *) self->headers;
    self->request.lock = &self->lock;
    self->request.hang_up = &self->hang_up;
    self->request.progress = &self->changed;
    if (ok && pthread_create (&self->thread, NULL, s_call_run, self) == 0)
        self->joined = false;
    else
        sb_harness_call_destroy (&self);
    return self;
}

//  The monotonic time `timeout_ms` from now, for pthread_cond_timedwait.
static struct timespec
s_deadline (int timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

bool
sb_harness_call_wait_for (sb_harness_call_t *self, const char *text, int timeout_ms)
{
    struct timespec deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->lock);
    bool has = false, in_time = true;
    while (!(has = self->response.body && strstr (self->response.body, text))
    &&     !self->done && in_time)
        in_time = pthread_cond_timedwait (&self->changed, &self->lock, &deadline) == 0;
    pthread_mutex_unlock (&self->lock);
    return has;
}

bool
sb_harness_call_header (sb_harness_call_t *self, const char *name, char *value, size_t size)
{
    pthread_mutex_lock (&self->lock);
    bool found = sb_harness_header (&self->response, name, value, size);
    pthread_mutex_unlock (&self->lock);
    return found;
}

bool
sb_harness_call_done (sb_harness_call_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool done = self->done;
    pthread_mutex_unlock (&self->lock);
    return done;
}

int
sb_harness_call_wait (sb_harness_call_t *self, int timeout_ms, bool hang_up,
                      const sb_harness_response_t **response, int64_t *done_ms)
{
    struct timespec deadline = s_deadline (timeout_ms);
    bool in_time = true;
    pthread_mutex_lock (&self->lock);
    self->hang_up = self->hang_up || hang_up;
    while (!self->done && in_time)
        in_time = pthread_cond_timedwait (&self->changed, &self->lock, &deadline) == 0
               || self->done;
    if (!in_time)
        self->hang_up = true;           //  the thread ends within a second
    pthread_mutex_unlock (&self->lock);
    if (!self->joined) {
        pthread_join (self->thread, NULL);
        self->joined = true;
    }
    if (response)
        *response = &self->response;
    if (done_ms)
        *done_ms = self->done_ms;
    return in_time ? self->rc : -1;
}

void
sb_harness_call_destroy (sb_harness_call_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_harness_call_t *self = *self_p;
    if (!self->joined) {
        pthread_mutex_lock (&self->lock);
        self->hang_up = true;
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->thread, NULL);
    }
    sb_harness_response_clear (&self->response);
    for (size_t i = 0; i < SB_HARNESS_CALL_HEADERS; i++)
        free (self->headers [i]);
    free (self->url);
    free (self->method);
    free (self->body);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
sb_harness_http (const char *method, const char *url, const char *const headers [],
                 const char *body, size_t body_len, int timeout_ms,
                 long *status, char **resp_body)
{
    if (resp_body)
        *resp_body = NULL;
    if (status)
        *status = 0;
    sb_harness_request_t request = { .method = method, .url = url, .headers = headers,
                                     .body = body, .body_len = body_len,
                                     .timeout_ms = timeout_ms };
    sb_harness_response_t response;
    int rc = sb_harness_request (&request, &response);
    if (rc == 0) {
        if (status)
            *status = response.status;
        if (resp_body) {
            *resp_body = response.body ? response.body : strdup ("");
            response.body = NULL;
        }
    }
    sb_harness_response_clear (&response);
    return rc ? -1 : 0;
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
