/*  tests/38_admin_cli.c — sb-admin (tools/sb_admin_main.c) against a tiny
    HTTP server in this test that records each request and answers with a
    canned status and body:

      - usage errors exit 2 (no command, unknown command, missing or extra
        arguments, an option the command does not take, a bad number, no
        key file, an unreadable key file); --help exits 0;
      - a server that cannot be reached exits 3;
      - a 2xx answer exits 0 and prints a table (or --json the JSON);
      - a refusal exits 1 with the server's sentence on stderr;
      - the request: method, path (segments percent-encoded), query, the
        Bearer key, the JSON body; the key is never printed;
      - user add without --password-file sends a generated password and
        prints that same password once;
      - connections add-key reads the API key from --key-file or stdin,
        never from an argument, and prints it nowhere; connection-keys
        rotate rotates, then re-seals call after call until nothing
        remains, and stops (1) when a call moves nothing;
      - quotas: plan show/create/set with --rate, --burst, --in-flight,
        --monthly N|unlimited, --weight as JSON numbers (null for
        unlimited), a bad number or no limit at all a usage error; tenant
        anchor; usage TENANT printed as lines, or --json.

    The end-to-end run sb-admin → gateway → token worker is the lead's,
    once the gateway relays /admin/ (tests/4x after the merge). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sb_harness.h"

#define KEY             "operator-key-0123456789abcdef0123456789"
#define MAX_REQUEST     65536       /* bytes of one request the server reads */
#define MAX_OUTPUT      65536       /* bytes of sb-admin's stdout or stderr kept */
#define MAX_QUEUED      8           /* canned answers given in turn */
#define API_KEY         "sk-test-api-key-never-printed-4242"

//  The tiny server: one request at a time, recorded; the canned answer.
static struct {
    int fd;                         /* listening socket */
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    char request [MAX_REQUEST];     /* the last request, head and body */
    int status;                     /* the answer's status */
    char body [4096];               /* the answer's body */
    int queued;                     /* answers in queue, given before status/body */
    int next;                       /* the next queued answer */
    int queue_status [MAX_QUEUED];
    char queue_body [MAX_QUEUED][512];
    int requests;                   /* requests served since the last s_answer */
    char lines [MAX_REQUEST];       /* their request lines, one a line */
} s_server;

static const char *s_stdin;         /* a file the next sb-admin reads as stdin; NULL: the test's */

static char s_key_file [256];       /* holds KEY */
static char s_url [64];             /* http://127.0.0.1:port */
static char s_out [MAX_OUTPUT];     /* sb-admin's last stdout */
static char s_err [MAX_OUTPUT];     /* sb-admin's last stderr */

static void *
s_serve (void *arg)
{
    while (true) {
        int fd = accept (s_server.fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf [MAX_REQUEST];
        size_t len = 0;
        //  Read the head, then Content-Length bytes of body
        while (len < sizeof buf - 1) {
            ssize_t n = read (fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t) n;
            buf [len] = 0;
            char *end = strstr (buf, "\r\n\r\n");
            if (!end)
                continue;
            char *cl = strcasestr (buf, "content-length:");
            size_t want = cl && cl < end? strtoul (cl + 15, NULL, 10): 0;
            if (len >= (size_t) (end + 4 - buf) + want)
                break;
        }
        buf [len] = 0;
        pthread_mutex_lock (&s_server.lock);
        memcpy (s_server.request, buf, len + 1);
        s_server.requests++;
        size_t used = strlen (s_server.lines);
        snprintf (s_server.lines + used, sizeof s_server.lines - used, "%.*s\n",
                  (int) strcspn (buf, "\r\n"), buf);
        int status = s_server.status;
        const char *body = s_server.body;
        if (s_server.next < s_server.queued) {
            status = s_server.queue_status [s_server.next];
            body = s_server.queue_body [s_server.next++];
        }
        char answer [8192];
        int n = snprintf (answer, sizeof answer, "HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                          "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                          status, strlen (body), body);
        pthread_mutex_unlock (&s_server.lock);
        ssize_t w = write (fd, answer, (size_t) n);
        (void) w;
        close (fd);
    }
}

static void
s_answer (int status, const char *body)
{
    pthread_mutex_lock (&s_server.lock);
    s_server.status = status;
    snprintf (s_server.body, sizeof s_server.body, "%s", body);
    s_server.request [0] = 0;
    s_server.lines [0] = 0;
    s_server.requests = 0;
    s_server.queued = s_server.next = 0;
    pthread_mutex_unlock (&s_server.lock);
}

//  Queues an answer given before the one of s_answer (call after it).
static void
s_queue (int status, const char *body)
{
    pthread_mutex_lock (&s_server.lock);
    assert_true (s_server.queued < MAX_QUEUED);
    s_server.queue_status [s_server.queued] = status;
    snprintf (s_server.queue_body [s_server.queued++], sizeof s_server.queue_body [0], "%s", body);
    pthread_mutex_unlock (&s_server.lock);
}

//  The request lines served since s_answer, and their count.
static const char *
s_lines (int *count)
{
    static char copy [MAX_REQUEST];
    pthread_mutex_lock (&s_server.lock);
    memcpy (copy, s_server.lines, sizeof copy);
    *count = s_server.requests;
    pthread_mutex_unlock (&s_server.lock);
    return copy;
}

//  The last request (copied into `buf`).
static const char *
s_request (void)
{
    static char copy [MAX_REQUEST];
    pthread_mutex_lock (&s_server.lock);
    memcpy (copy, s_server.request, sizeof copy);
    pthread_mutex_unlock (&s_server.lock);
    return copy;
}

//  Reads a file into `buf` (cut to its size).
static void
s_slurp (const char *path, char *buf, size_t size)
{
    FILE *f = fopen (path, "r");
    size_t n = f? fread (buf, 1, size - 1, f): 0;
    buf [n] = 0;
    if (f)
        fclose (f);
}

//  Runs sb-admin with `args` (NULL-terminated) after --url and the key;
//  returns its exit code, its output in s_out and s_err.
static int
s_run_argv (const char *const *args)
{
    char out [64], err [64];
    snprintf (out, sizeof out, "/tmp/sb-admin-cli-%d.out", (int) getpid ());
    snprintf (err, sizeof err, "/tmp/sb-admin-cli-%d.err", (int) getpid ());
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        int o = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open (err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2 (o, 1) < 0 || dup2 (e, 2) < 0)
            _exit (99);
        int in = s_stdin? open (s_stdin, O_RDONLY): -1;
        if (s_stdin && (in < 0 || dup2 (in, 0) < 0))
            _exit (97);
        //  execv's argv is not const, but does not write to it
        char *argv [32] = { 0 };
        for (int i = 0; args [i] && i < 31; i++)
            memcpy (&argv [i], &args [i], sizeof argv [i]);
        execv (argv [0], argv);
        _exit (98);
    }
    int wstatus = 0;
    assert_int_equal (waitpid (pid, &wstatus, 0), pid);
    s_slurp (out, s_out, sizeof s_out);
    s_slurp (err, s_err, sizeof s_err);
    unlink (out);
    unlink (err);
    assert_true (WIFEXITED (wstatus));
    //  Whatever happened, the key is never printed, nor an API key
    assert_null (strstr (s_out, KEY));
    assert_null (strstr (s_err, KEY));
    assert_null (strstr (s_out, API_KEY));
    assert_null (strstr (s_err, API_KEY));
    return WEXITSTATUS (wstatus);
}

//  s_run_argv with --url s_url --admin-key-file s_key_file first.
static int
s_run (const char *first, ...)
{
    const char *argv [32] = { sb_harness_bin ("sb-admin"), "--url", s_url, "--admin-key-file",
                              s_key_file };
    int n = 5;
    va_list args;
    va_start (args, first);
    for (const char *arg = first; arg && n < 31; arg = va_arg (args, const char *))
        argv [n++] = arg;
    va_end (args);
    argv [n] = NULL;
    return s_run_argv (argv);
}

//  The request line and the body of the last request must be these.
static void
s_assert_request (const char *line, const char *body)
{
    const char *request = s_request ();
    if (strncmp (request, line, strlen (line)) != 0 || request [strlen (line)] != ' ')
        fail_msg ("want \"%s\", got: %.200s", line, request);
    assert_non_null (strcasestr (request, "\r\nauthorization: Bearer " KEY "\r\n"));
    if (body) {
        const char *got = strstr (request, "\r\n\r\n");
        assert_non_null (got);
        json_t *want_json = json_loads (body, 0, NULL);
        json_t *got_json = json_loads (got + 4, 0, NULL);
        if (!json_equal (want_json, got_json))
            fail_msg ("want body %s, got %s", body, got + 4);
        json_decref (want_json);
        json_decref (got_json);
    }
}

static void
test_usage (void **state)
{
    const char *help [] = { sb_harness_bin ("sb-admin"), "--help", NULL };
    assert_int_equal (s_run_argv (help), 0);
    assert_non_null (strstr (s_out, "tenant create"));
    const char *bare [] = { sb_harness_bin ("sb-admin"), NULL };
    assert_int_equal (s_run_argv (bare), 2);
    assert_int_equal (s_run ("tenant", NULL), 2);
    assert_int_equal (s_run ("tenant", "explode", NULL), 2);
    assert_non_null (strstr (s_err, "unknown command"));
    assert_int_equal (s_run ("tenant", "create", "only-id", NULL), 2);
    assert_non_null (strstr (s_err, "tenant create ID NAME"));
    assert_int_equal (s_run ("tenant", "list", "extra", NULL), 2);
    assert_int_equal (s_run ("tenant", "list", "--plan", "pro", NULL), 2);
    assert_non_null (strstr (s_err, "--plan"));
    assert_int_equal (s_run ("user", "remove", "t1", "abc", NULL), 2);
    assert_int_equal (s_run ("audit", "--limit", "0", NULL), 2);
    assert_int_equal (s_run ("audit", "--limit", NULL), 2);
    assert_int_equal (s_run ("--colour", "tenant", "list", NULL), 2);
    assert_int_equal (s_run ("tokens", "revoke", "t1", "--user", "x", NULL), 2);
    //  No key file, or an unreadable one
    const char *no_key [] = { sb_harness_bin ("sb-admin"), "--url", s_url, "plan", "list", NULL };
    unsetenv ("SB_ADMIN_KEY_FILE");
    assert_int_equal (s_run_argv (no_key), 2);
    assert_non_null (strstr (s_err, "--admin-key-file"));
    const char *bad_key [] = { sb_harness_bin ("sb-admin"), "--url", s_url, "--admin-key-file",
                               "/nonexistent/key", "plan", "list", NULL };
    assert_int_equal (s_run_argv (bad_key), 2);
    const char *bad_url [] = { sb_harness_bin ("sb-admin"), "--url", "ftp://x", "--admin-key-file",
                               s_key_file, "plan", "list", NULL };
    assert_int_equal (s_run_argv (bad_url), 2);
    //  None of these reached the server
    assert_string_equal (s_request (), "");
}

static void
test_unreachable (void **state)
{
    //  A port nobody listens on: take a free one and do not bind it
    char url [64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", sb_harness_free_port ());
    const char *argv [] = { sb_harness_bin ("sb-admin"), "--url", url, "--admin-key-file",
                            s_key_file, "tenant", "list", NULL };
    assert_int_equal (s_run_argv (argv), 3);
    assert_non_null (strstr (s_err, "cannot reach"));
}

static void
test_requests (void **state)
{
    s_answer (200, "{\"tenants\":[{\"id\":\"acme\",\"name\":\"Acme Inc\",\"plan\":\"pro\","
                   "\"created_at\":\"2026-12-07T10:00:00.000Z\",\"users\":3}],\"more\":false}");
    assert_int_equal (s_run ("tenant", "list", NULL), 0);
    s_assert_request ("GET /admin/tenants", NULL);
    assert_non_null (strstr (s_out, "acme"));
    assert_non_null (strstr (s_out, "Acme Inc"));
    assert_non_null (strstr (s_out, "PLAN"));
    assert_int_equal (s_run ("--json", "tenant", "list", NULL), 0);
    json_t *printed = json_loads (s_out, 0, NULL);
    assert_true (json_is_array (json_object_get (printed, "tenants")));
    json_decref (printed);

    s_answer (201, "{\"tenant\":{\"id\":\"acme\",\"name\":\"Acme Inc\",\"plan\":\"pro\",\"users\":0}}");
    assert_int_equal (s_run ("tenant", "create", "acme", "Acme Inc", "--plan", "pro", NULL), 0);
    s_assert_request ("POST /admin/tenants", "{\"id\":\"acme\",\"name\":\"Acme Inc\",\"plan\":\"pro\"}");

    s_answer (409, "{\"error\":\"conflict\",\"message\":\"tenant \\\"acme\\\" already exists\"}");
    assert_int_equal (s_run ("tenant", "create", "acme", "Acme", NULL), 1);
    assert_non_null (strstr (s_err, "tenant \"acme\" already exists"));
    assert_non_null (strstr (s_err, "409"));
    s_answer (401, "");
    assert_int_equal (s_run ("plan", "list", NULL), 1);
    assert_non_null (strstr (s_err, "operator key"));
    //  The token service cannot serve now: 4, told from a refusal.
    s_answer (503, "{\"error\":\"temporarily_unavailable\",\"error_description\":\"The token service is not available\"}");
    assert_int_equal (s_run ("plan", "list", NULL), 4);
    assert_non_null (strstr (s_err, "try again"));
    assert_non_null (strstr (s_err, "The token service is not available"));
    s_answer (504, "");
    assert_int_equal (s_run ("plan", "list", NULL), 4);

    s_answer (200, "{\"tenant\":\"acme\",\"deleted\":{\"users\":3}}");
    assert_int_equal (s_run ("tenant", "delete", "acme", NULL), 0);
    s_assert_request ("DELETE /admin/tenants/acme", NULL);
    assert_non_null (strstr (s_out, "users 3"));

    s_answer (200, "{}");
    assert_int_equal (s_run ("tenant", "plan", "acme", "enterprise", NULL), 0);
    s_assert_request ("PUT /admin/tenants/acme/plan", "{\"plan\":\"enterprise\"}");
    assert_int_equal (s_run ("client", "revoke", "https://c.example/a b.json", NULL), 0);
    s_assert_request ("DELETE /admin/clients/https%3A%2F%2Fc.example%2Fa%20b.json", NULL);
    assert_int_equal (s_run ("tokens", "revoke", "acme", "--user", "42", NULL), 0);
    s_assert_request ("DELETE /admin/tenants/acme/tokens?user=42", NULL);
    assert_int_equal (s_run ("audit", "acme", "--limit", "5", NULL), 0);
    s_assert_request ("GET /admin/audit?tenant=acme&limit=5", NULL);
    assert_int_equal (s_run ("user", "remove", "acme", "7", NULL), 0);
    s_assert_request ("DELETE /admin/tenants/acme/users/7", NULL);
    assert_int_equal (s_run ("keys", "rotate", NULL), 0);
    s_assert_request ("POST /admin/keys/rotate", NULL);

    //  A password from a file
    char file [256];
    snprintf (file, sizeof file, "/tmp/sb-admin-cli-%d.pw", (int) getpid ());
    FILE *f = fopen (file, "w");
    assert_non_null (f);
    fputs ("from the file 123\n", f);
    fclose (f);
    assert_int_equal (s_run ("user", "password", "acme", "7", "--password-file", file, NULL), 0);
    s_assert_request ("PUT /admin/tenants/acme/users/7/password", "{\"password\":\"from the file 123\"}");
    assert_null (strstr (s_out, "from the file"));
    unlink (file);
}

static void
test_generated_password (void **state)
{
    s_answer (201, "{\"tenant\":\"acme\",\"user\":{\"id\":9,\"email\":\"ada@example.com\"}}");
    assert_int_equal (s_run ("user", "add", "acme", "ada@example.com", NULL), 0);
    const char *request = s_request ();
    const char *body = strstr (request, "\r\n\r\n");
    assert_non_null (body);
    json_t *sent = json_loads (body + 4, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (sent, "email")), "ada@example.com");
    const char *password = json_string_value (json_object_get (sent, "password"));
    assert_non_null (password);
    assert_true (strlen (password) >= 20);
    //  Printed once, the same
    char line [128];
    snprintf (line, sizeof line, "password: %s\n", password);
    const char *at = strstr (s_out, line);
    assert_non_null (at);
    assert_null (strstr (at + strlen (line), password));
    assert_non_null (strstr (s_out, "ada@example.com"));
    json_decref (sent);
    //  A refused add prints no password
    s_answer (422, "{\"error\":\"weak_password\",\"message\":\"too short\"}");
    assert_int_equal (s_run ("user", "add", "acme", "bob@example.com", NULL), 1);
    assert_null (strstr (s_out, "password:"));
}

//  A file holding `text` (its path in `path`).
static void
s_file (char path [256], const char *name, const char *text)
{
    snprintf (path, 256, "/tmp/sb-admin-cli-%d.%s", (int) getpid (), name);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
}

static void
test_connections (void **state)
{
    s_answer (200, "{\"tenant\":\"acme\",\"connections\":[{\"connector\":\"crm\",\"kind\":\"api_key\","
                   "\"status\":\"connected\",\"version\":3,\"key_id\":\"k0123456789abcde\"}]}");
    assert_int_equal (s_run ("connections", "list", "acme", NULL), 0);
    s_assert_request ("GET /admin/tenants/acme/connections", NULL);
    assert_non_null (strstr (s_out, "crm"));
    assert_non_null (strstr (s_out, "k0123456789abcde"));

    //  The API key from --key-file, then from stdin: sent, printed nowhere.
    char key_file [256], stdin_file [256], empty [256];
    s_file (key_file, "apikey", API_KEY "\n");
    s_file (stdin_file, "stdin", API_KEY "\r\nsecond line\n");
    s_file (empty, "empty", "\n");
    s_answer (201, "{\"tenant\":\"acme\",\"connection\":{\"connector\":\"crm\",\"version\":1,"
                   "\"key_id\":\"k0123456789abcde\"}}");
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", "--key-file", key_file, NULL), 0);
    s_assert_request ("PUT /admin/tenants/acme/connections/crm", "{\"api_key\":\"" API_KEY "\"}");
    assert_non_null (strstr (s_out, "stored"));
    s_stdin = stdin_file;
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", NULL), 0);
    s_assert_request ("PUT /admin/tenants/acme/connections/crm", "{\"api_key\":\"" API_KEY "\"}");
    //  Never from an argument; an empty or overlong key; a refusal.
    s_answer (201, "{}");
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", API_KEY, NULL), 2);
    s_stdin = empty;
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", NULL), 2);
    assert_non_null (strstr (s_err, "empty"));
    char *big = malloc (16384 + 3);
    memset (big, 'k', 16385);
    memcpy (big + 16385, "\n", 2);
    char big_file [256];
    s_file (big_file, "big", big);
    free (big);
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", "--key-file", big_file, NULL), 2);
    assert_non_null (strstr (s_err, "16384"));
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", "--key-file",
                             "/nonexistent/key", NULL), 2);
    int count = 0;
    s_lines (&count);
    assert_int_equal (count, 0);
    s_stdin = stdin_file;
    s_answer (409, "{\"error\":\"conflict\",\"message\":\"connector \\\"crm\\\" signs in with OAuth, "
                   "not an API key: connect it at /connect/crm\"}");
    assert_int_equal (s_run ("connections", "add-key", "acme", "crm", NULL), 1);
    assert_non_null (strstr (s_err, "/connect/crm"));
    s_stdin = NULL;
    assert_int_equal (s_run ("connections", "list", "acme", "--key-file", key_file, NULL), 2);
    unlink (key_file);
    unlink (stdin_file);
    unlink (empty);
    unlink (big_file);

    s_answer (200, "{\"tenant\":\"acme\",\"connector\":\"crm\",\"deleted\":true}");
    assert_int_equal (s_run ("connections", "delete", "acme", "crm", NULL), 0);
    s_assert_request ("DELETE /admin/tenants/acme/connections/crm", NULL);
    assert_non_null (strstr (s_out, "deleted"));

    s_answer (200, "{\"current\":\"newkey0123456789\",\"keys\":[{\"id\":\"newkey0123456789\","
                   "\"current\":true,\"connections\":7,\"connect_flows\":0}]}");
    assert_int_equal (s_run ("connection-keys", "list", NULL), 0);
    s_assert_request ("GET /admin/connection-keys", NULL);
    assert_non_null (strstr (s_out, "newkey0123456789"));

    //  Rotate: one rotation, then reseal calls until nothing remains.
    s_answer (200, "{\"current\":\"newkey0123456789\",\"resealed\":0,\"changed\":0,\"failed\":0,"
                   "\"remaining\":0,\"retired\":[]}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"previous\":\"oldkey0123456789\"}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"resealed\":100,\"changed\":0,\"failed\":0,"
                  "\"remaining\":150,\"retired\":[]}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"resealed\":100,\"changed\":1,\"failed\":0,"
                  "\"remaining\":49,\"retired\":[]}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"resealed\":49,\"changed\":0,\"failed\":0,"
                  "\"remaining\":0,\"retired\":[\"oldkey0123456789\"]}");
    assert_int_equal (s_run ("connection-keys", "rotate", NULL), 0);
    const char *lines = s_lines (&count);
    assert_int_equal (count, 4);
    assert_non_null (strstr (lines, "POST /admin/connection-keys/rotate "));
    assert_non_null (strstr (lines, "POST /admin/connection-keys/reseal "));
    assert_non_null (strstr (s_out, "data key newkey0123456789 is current (was oldkey0123456789)"));
    assert_non_null (strstr (s_out, "150 remaining"));
    assert_non_null (strstr (s_out, "249 in all"));
    assert_non_null (strstr (s_out, "retired oldkey0123456789"));
    //  A call that moves nothing while rows remain: 1, with the reason.
    s_answer (200, "{\"current\":\"newkey0123456789\",\"resealed\":0,\"changed\":0,\"failed\":2,"
                   "\"remaining\":2,\"retired\":[]}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"previous\":\"oldkey0123456789\"}");
    assert_int_equal (s_run ("connection-keys", "rotate", NULL), 1);
    s_lines (&count);
    assert_int_equal (count, 2);
    assert_non_null (strstr (s_err, "do not open"));
    //  The service unavailable midway: 4.
    s_answer (503, "{\"error\":\"unavailable\",\"message\":\"the database did not answer\"}");
    s_queue (200, "{\"current\":\"newkey0123456789\",\"previous\":\"oldkey0123456789\"}");
    assert_int_equal (s_run ("connection-keys", "rotate", NULL), 4);
}

static int
s_setup (void **state)
{
    pthread_mutex_init (&s_server.lock, NULL);
    s_server.fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (s_server.fd < 0 || bind (s_server.fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (s_server.fd, 8) || getsockname (s_server.fd, (struct sockaddr *) &addr, &len))
        return -1;
    s_server.port = ntohs (addr.sin_port);
    snprintf (s_url, sizeof s_url, "http://127.0.0.1:%d", s_server.port);
    if (pthread_create (&s_server.thread, NULL, s_serve, NULL))
        return -1;
    snprintf (s_key_file, sizeof s_key_file, "/tmp/sb-admin-cli-%d.key", (int) getpid ());
    FILE *f = fopen (s_key_file, "w");
    if (!f)
        return -1;
    fputs (KEY "\n", f);
    fclose (f);
    return 0;
}

static int
s_teardown (void **state)
{
    shutdown (s_server.fd, SHUT_RDWR);
    close (s_server.fd);
    pthread_join (s_server.thread, NULL);
    unlink (s_key_file);
    return 0;
}

static void
test_quotas (void **state)
{
    static const char plan [] =
        "{\"plan\":{\"id\":\"team\",\"name\":\"Team\",\"rate_per_min\":120,\"burst\":20,"
        "\"max_in_flight\":0,\"monthly_calls\":5000,\"weight\":2,\"tenants\":3}}";
    s_answer (201, plan);
    assert_int_equal (s_run ("plan", "create", "team", "Team", "--rate", "120", "--burst=20",
                             "--monthly", "5000", "--weight", "2", NULL), 0);
    s_assert_request ("POST /admin/plans", "{\"id\":\"team\",\"name\":\"Team\",\"rate_per_min\":120,"
                      "\"burst\":20,\"monthly_calls\":5000,\"weight\":2}");
    assert_non_null (strstr (s_out, "RATE/MIN"));
    assert_non_null (strstr (s_out, "team"));
    assert_non_null (strstr (s_out, "unlimited"));          //  max_in_flight 0
    assert_non_null (strstr (s_out, "5000"));

    s_answer (200, plan);
    assert_int_equal (s_run ("plan", "show", "team", NULL), 0);
    s_assert_request ("GET /admin/plans/team", NULL);
    assert_int_equal (s_run ("plan", "set", "team", "--in-flight", "8", "--monthly", "unlimited", NULL), 0);
    s_assert_request ("PUT /admin/plans/team", "{\"max_in_flight\":8,\"monthly_calls\":null}");
    assert_int_equal (s_run ("plan", "set", "team", "--rate", "0", NULL), 0);
    s_assert_request ("PUT /admin/plans/team", "{\"rate_per_min\":0}");
    assert_int_equal (s_run ("--json", "plan", "show", "team", NULL), 0);
    json_t *printed = json_loads (s_out, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (printed, "plan"), "burst")), 20);
    json_decref (printed);
    s_answer (200, "{\"plans\":[{\"id\":\"free\",\"name\":\"Free\",\"rate_per_min\":60,\"burst\":30,"
                   "\"max_in_flight\":4,\"monthly_calls\":1000,\"weight\":1,\"tenants\":7}]}");
    assert_int_equal (s_run ("plan", "list", NULL), 0);
    s_assert_request ("GET /admin/plans", NULL);
    assert_non_null (strstr (s_out, "WEIGHT"));
    assert_non_null (strstr (s_out, "1000"));

    //  The server's refusal names the field; sb-admin relays it.
    s_answer (400, "{\"error\":\"invalid_request\",\"message\":\"\\\"weight\\\" must be a whole "
                   "number from 1 to 100 (the share of the fair queues)\"}");
    assert_int_equal (s_run ("plan", "set", "team", "--weight", "0", NULL), 1);
    assert_non_null (strstr (s_err, "\"weight\" must be a whole number from 1 to 100"));

    //  Usage errors never reach the server.
    s_answer (200, plan);
    assert_int_equal (s_run ("plan", "set", "team", NULL), 2);
    assert_non_null (strstr (s_err, "at least one"));
    assert_int_equal (s_run ("plan", "set", "team", "--rate", "-5", NULL), 2);
    assert_non_null (strstr (s_err, "--rate must be a whole number"));
    assert_int_equal (s_run ("plan", "set", "team", "--monthly", "lots", NULL), 2);
    assert_non_null (strstr (s_err, "unlimited"));
    assert_int_equal (s_run ("plan", "set", "team", "--weight", "1.5", NULL), 2);
    assert_int_equal (s_run ("plan", "set", "team", "--burst", "12345678901234567", NULL), 2);
    assert_int_equal (s_run ("plan", "create", "team", NULL), 2);
    assert_int_equal (s_run ("plan", "show", "team", "--rate", "5", NULL), 2);
    assert_non_null (strstr (s_err, "--rate"));
    assert_int_equal (s_run ("tenant", "list", "--weight", "5", NULL), 2);
    assert_int_equal (s_run ("tenant", "anchor", "acme", NULL), 2);
    assert_int_equal (s_run ("tenant", "anchor", "acme", "x", NULL), 2);
    assert_int_equal (s_run ("usage", NULL), 2);
    assert_int_equal (s_run ("usage", "a", "b", NULL), 2);
    int count = 0;
    s_lines (&count);
    assert_int_equal (count, 0);

    s_answer (200, "{\"tenant\":{\"id\":\"acme\",\"billing_anchor\":15},\"changed\":true}");
    assert_int_equal (s_run ("tenant", "anchor", "acme", "15", NULL), 0);
    s_assert_request ("PUT /admin/tenants/acme/billing-anchor", "{\"day\":15}");
    assert_non_null (strstr (s_out, "billing day 15"));

    s_answer (200, "{\"tenant\":\"acme\",\"plan\":\"free\",\"billing_anchor\":1,"
                   "\"limits\":{\"rate_per_min\":60,\"burst\":30,\"max_in_flight\":4,"
                   "\"monthly_calls\":1000,\"weight\":1},"
                   "\"period\":{\"start\":\"2026-12-01T00:00:00.000Z\",\"end\":\"2027-01-01T00:00:00.000Z\"},"
                   "\"month\":{\"calls\":412,\"allowance\":1000,\"remaining\":588,"
                   "\"refused\":{\"rate\":17,\"monthly\":2}},"
                   "\"minute\":{\"start\":\"2026-12-07T21:04:00.000Z\",\"calls\":9,\"refused\":{}}}");
    assert_int_equal (s_run ("usage", "ac me", NULL), 0);
    s_assert_request ("GET /admin/tenants/ac%20me/usage", NULL);
    assert_non_null (strstr (s_out, "412 calls of 1000, 588 remaining"));
    assert_non_null (strstr (s_out, "rate 17, monthly 2"));
    assert_non_null (strstr (s_out, "2026-12-01T00:00:00.000Z to 2027-01-01T00:00:00.000Z"));
    assert_non_null (strstr (s_out, "9 calls; refused: none"));
    assert_non_null (strstr (s_out, "rate 60/min (burst 30)"));
    assert_int_equal (s_run ("--json", "usage", "acme", NULL), 0);
    printed = json_loads (s_out, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (printed, "month"), "calls")), 412);
    json_decref (printed);
    s_answer (404, "{\"error\":\"not_found\",\"message\":\"there is no tenant \\\"nope\\\"\"}");
    assert_int_equal (s_run ("usage", "nope", NULL), 1);
    assert_non_null (strstr (s_err, "there is no tenant \"nope\""));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage),
        cmocka_unit_test (test_unreachable),
        cmocka_unit_test (test_requests),
        cmocka_unit_test (test_generated_password),
        cmocka_unit_test (test_connections),
        cmocka_unit_test (test_quotas),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
