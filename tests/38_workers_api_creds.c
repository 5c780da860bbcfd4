/*  tests/38_workers_api_creds.c — the api worker (the product's sb-worker
    --role api) calling connectors whose credential is each tenant's
    (tests/fixtures/connectors/tenant/): it asks the token service for the
    tenant's credential with a worker request (proto/PROTOCOL.md "Worker
    requests", "Connections").

    The fake broker (tests/38_workers_fake.c: a ROUTER with the real codec)
    plays the broker and the token service at once: it sees every REQUEST
    the worker sends (service, tenant, parent, flags, timeout, the
    connection/credential job) and answers it as scripted, counting them;
    the fake upstream serves the accounts and records the Authorization it
    received, and answers 401 to the credentials a test names.

    Covered: two tenants get their own credentials; a cache hit sends no
    request; 100 calls at once send one; an answer that expires asks
    again; a 401 asks once with `stale` and retries once, a second 401 is
    an isError; missing and broken connections (the link, the API-key
    sentence, the URL-mode elicitation refused by the gateway, accepted
    and polled until connected, declined; a 2026-07-28 call with and
    without the capability); the token service failing, unavailable and
    silent; a base URL made from the connection's instance_url; the
    cache bounded at SB_API_CREDS_MAX entries, the oldest evicted first. */
#include <czmq.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_attr.h"
#include "sb_api_creds.h"

#define CREDIT          128
#define HEARTBEAT_MS    1000        /* slow enough that 100 transfers under ASan never look like a lost broker */
#define WAIT_MS         5000
#define CALL_MS         20000       /* a call's timeout_ms unless a test says otherwise */
#define MANY            100         /* calls at once for the single-flight test */
#define CONNECT_URL     "https://sb.example/connect/tenant-crm?ticket=t1ck3t"

static fake_upstream_t *s_up;
static fake_broker_t *s_broker;
static pid_t s_worker = -1;

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    s_up = fake_upstream_new ();
    assert_non_null (s_up);
    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_broker);
    char credit [16], heartbeat [16], urls [128];
    snprintf (credit, sizeof credit, "%d", CREDIT);
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (urls, sizeof urls, "tenant-crm=%s", fake_upstream_url (s_up));
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", credit, "--heartbeat-ms", heartbeat,
        "--connectors", SB_SOURCE_DIR "/tests/fixtures/connectors/tenant",
        "--connector-urls", urls, "--log-level", "info", NULL
    };
    s_worker = sb_harness_spawn (argv, NULL);
    assert_true (s_worker > 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
    return 0;
}

static int
s_teardown (void **state)
{
    if (s_worker > 0 && sb_harness_alive (s_worker))
        assert_int_equal (sb_harness_stop (s_worker), 0);
    fake_broker_destroy (&s_broker);
    fake_upstream_destroy (&s_up);
    return 0;
}

//  ---------------------------------------------------------------------
//  Helpers

//  Sends a tools/call JOB for `tenant` and `subject` (inputs: a
//  2026-07-28 call with the client's answers and `caps`; NULL: an older
//  revision's call, whose questions go out as ASK).
static void
s_send_call (const char *corr_id, const char *tenant, const char *subject, const char *tool,
             const char *id, uint32_t timeout_ms, const char *inputs, uint32_t caps)
{
    char args [128];
    snprintf (args, sizeof args, "{\"id\":\"%s\"}", id);
    sb_job_t job = {
        .op = sb_unconst ("tools/call"), .tool = sb_unconst (tool), .args = args,
        .subject = sb_unconst (subject), .inputs = sb_unconst (inputs), .caps = caps, .round = 1,
    };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "%s", tenant);
    msg.timeout_ms = timeout_ms;
    msg.flags = SB_FLAG_RETRY_SAFE;
    msg.attempt = 1;
    msg.payload = payload;
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    sb_msg_reset (&msg);
}

//  The next message must be the worker's credential request for `parent`;
//  checks every field and returns the request's corr_id in `corr_id`.
static void
s_expect_request (const char *parent, const char *tenant, const char *subject,
                  const char *connector, const char *data, uint32_t max_timeout_ms, char *corr_id)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    if (msg.command != SB_CMD_REQUEST)
        fail_msg ("expected the credential REQUEST for %s, got %s %s", parent,
                  sb_cmd_name (msg.command), msg.corr_id);
    assert_string_equal (msg.service, "token");
    assert_string_equal (msg.tenant, tenant);
    assert_string_equal (msg.parent, parent);
    assert_true (msg.flags & SB_FLAG_RETRY_SAFE);
    assert_true (msg.timeout_ms > 0 && msg.timeout_ms <= max_timeout_ms);
    assert_string_not_equal (msg.corr_id, parent);
    sb_job_t job = { 0 };
    assert_non_null (msg.payload);
    assert_int_equal (sb_job_decode (zframe_data (msg.payload), zframe_size (msg.payload), &job), 0);
    assert_string_equal (job.op, "connection/credential");
    assert_string_equal (job.connector, connector);
    assert_string_equal (job.subject, subject);
    assert_string_equal (job.data, data);
    sb_job_clear (&job);
    snprintf (corr_id, SB_MAX_CORR_ID_LEN + 1, "%s", msg.corr_id);
    sb_msg_reset (&msg);
}

//  Answers request `corr_id` as the token service (through the broker)
//  would: REPLY with `status` and, when not NULL, the result `json`.
static void
s_reply (const char *corr_id, sb_status_t status, const char *json)
{
    zframe_t *payload = json ? sb_job_result_encode (json) : NULL;
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_reply (&msg, corr_id, status, &payload), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    sb_msg_reset (&msg);
}

static void
s_reply_connected (const char *corr_id, const char *secret, int version, int expires_in)
{
    char json [256];
    snprintf (json, sizeof json, "{\"status\":\"connected\",\"kind\":\"oauth2\",\"secret\":\"%s\","
              "\"version\":%d,\"expires_in\":%d,\"vars\":{}}", secret, version, expires_in);
    s_reply (corr_id, SB_STATUS_OK, json);
}

//  The next message must be the RESULT of `corr_id`: returns it parsed.
static json_t *
s_expect_result (const char *corr_id, int timeout_ms)
{
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, timeout_ms, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *json = json_loads (text, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return json;
}

static const char *
s_text_of (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text"));
}

static const char *
s_meta (json_t *result, const char *key)
{
    return json_string_value (json_object_get (json_object_get (result, "_meta"), key));
}

//  An account result fetched with `auth`.
static void
s_expect_account (const char *corr_id, const char *auth)
{
    json_t *result = s_expect_result (corr_id, WAIT_MS);
    if (json_is_true (json_object_get (result, "isError")))
        fail_msg ("%s: isError: %s", corr_id, s_text_of (result));
    assert_non_null (json_object_get (result, "structuredContent"));
    json_decref (result);
    char seen [256];
    fake_upstream_last_auth (s_up, seen, sizeof seen);
    assert_string_equal (seen, auth);
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_two_tenants (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    fake_upstream_reset (s_up);
    s_send_call ("a-1", "acme", "user:ann", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("a-1", "acme", "user:ann", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "acme-secret-1", 1, 3600);
    s_expect_account ("a-1", "Bearer acme-secret-1");

    s_send_call ("g-1", "globex", "user:gus", "tcrm_get_account", "acc_0002", CALL_MS, NULL, 0);
    s_expect_request ("g-1", "globex", "user:gus", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "globex-secret-1", 7, 3600);
    s_expect_account ("g-1", "Bearer globex-secret-1");

    //  Both kept: each tenant's next call goes out at once with its own
    s_send_call ("a-2", "acme", "user:ann", "tcrm_get_account", "acc_0003", CALL_MS, NULL, 0);
    s_expect_account ("a-2", "Bearer acme-secret-1");
    s_send_call ("g-2", "globex", "user:other", "tcrm_get_account", "acc_0004", CALL_MS, NULL, 0);
    s_expect_account ("g-2", "Bearer globex-secret-1");
    assert_int_equal (fake_upstream_requests (s_up), 4);
}

static void
test_single_flight (void **state)
{
    fake_upstream_reset (s_up);
    for (int i = 0; i < MANY; i++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "m-%d", i);
        s_send_call (corr_id, "many", "user:mo", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    }
    //  The worker takes its jobs in order: once the ping behind them is
    //  answered, every call has asked for (or joined) the credential.
    assert_int_equal (fake_broker_send_op (s_broker, "sync", 5000, 0, "ping", NULL, NULL), 0);
    char request [SB_MAX_CORR_ID_LEN + 1] = "";
    int requests = 0;
    bool synced = false;
    while (!synced) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
        if (msg.command == SB_CMD_REQUEST) {
            requests++;
            assert_string_equal (msg.parent, "m-0");
            snprintf (request, sizeof request, "%s", msg.corr_id);
        }
        else {
            assert_int_equal (msg.command, SB_CMD_RESULT);
            assert_string_equal (msg.corr_id, "sync");
            synced = true;
        }
        sb_msg_reset (&msg);
    }
    assert_int_equal (requests, 1);
    s_reply_connected (request, "many-secret", 1, 3600);
    bool seen [MANY] = { false };
    for (int i = 0; i < MANY; i++) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
        assert_int_equal (msg.command, SB_CMD_RESULT);
        assert_int_equal (msg.status, SB_STATUS_OK);
        int index = -1;
        assert_int_equal (sscanf (msg.corr_id, "m-%d", &index), 1);
        assert_true (index >= 0 && index < MANY && !seen [index]);
        seen [index] = true;
        sb_msg_reset (&msg);
    }
    assert_int_equal (fake_upstream_requests (s_up), MANY);
    char auth [256];
    fake_upstream_last_auth (s_up, auth, sizeof auth);
    assert_string_equal (auth, "Bearer many-secret");
}

static void
test_expiry (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    //  60 s left is the margin: good for the call that asked, not kept
    s_send_call ("e-1", "brief", "user:bo", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("e-1", "brief", "user:bo", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "brief-1", 1, 60);
    s_expect_account ("e-1", "Bearer brief-1");
    s_send_call ("e-2", "brief", "user:bo", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("e-2", "brief", "user:bo", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "brief-2", 2, 120);
    s_expect_account ("e-2", "Bearer brief-2");
    //  120 s: kept for another 60 s
    s_send_call ("e-3", "brief", "user:bo", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_account ("e-3", "Bearer brief-2");
    //  No expiry given: kept (for SB_API_CREDS_NO_EXPIRY_MS)
    s_send_call ("e-4", "keyco", "user:ko", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("e-4", "keyco", "user:ko", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"connected\",\"kind\":\"api_key\","
             "\"secret\":\"key-1\",\"version\":1}");
    s_expect_account ("e-4", "Bearer key-1");
    s_send_call ("e-5", "keyco", "user:ko", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_account ("e-5", "Bearer key-1");
}

static void
test_401_renews_once (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    fake_upstream_reset (s_up);
    fake_upstream_refuse_auth (s_up, "Bearer rot-1");
    s_send_call ("r-1", "rot", "user:ro", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("r-1", "rot", "user:ro", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "rot-1", 4, 3600);
    //  The upstream refused version 4: asked again with stale, retried once
    s_expect_request ("r-1", "rot", "user:ro", "tenant-crm", "{\"stale\":4}", CALL_MS, request);
    s_reply_connected (request, "rot-2", 5, 3600);
    s_expect_account ("r-1", "Bearer rot-2");
    assert_int_equal (fake_upstream_requests (s_up), 2);
    //  The new one is kept
    s_send_call ("r-2", "rot", "user:ro", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_account ("r-2", "Bearer rot-2");
    assert_int_equal (fake_upstream_requests (s_up), 3);

    //  Refused again after the renewal: an isError, and nothing kept
    fake_upstream_refuse_auth (s_up, "Bearer dead-1");
    fake_upstream_refuse_auth (s_up, "Bearer dead-2");
    s_send_call ("d-1", "dead", "user:do", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("d-1", "dead", "user:do", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "dead-1", 1, 3600);
    s_expect_request ("d-1", "dead", "user:do", "tenant-crm", "{\"stale\":1}", CALL_MS, request);
    s_reply_connected (request, "dead-2", 2, 3600);
    json_t *result = s_expect_result ("d-1", WAIT_MS);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_meta (result, "error_type"), "connection_refused");
    assert_non_null (strstr (s_text_of (result), "The CRM refused the connection's credentials"));
    json_decref (result);
    assert_int_equal (fake_upstream_requests (s_up), 5);
    s_send_call ("d-2", "dead", "user:do", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("d-2", "dead", "user:do", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "dead-3", 3, 3600);
    s_expect_account ("d-2", "Bearer dead-3");
}

//  An isError result naming the connection problem.
static void
s_expect_connect_error (const char *corr_id, const char *error_type, const char *url,
                        const char *text_part)
{
    json_t *result = s_expect_result (corr_id, 2 * WAIT_MS);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_meta (result, "error_type"), error_type);
    if (url) {
        assert_string_equal (s_meta (result, "connect_url"), url);
        assert_non_null (strstr (s_text_of (result), url));
    }
    else
        assert_null (s_meta (result, "connect_url"));
    if (!strstr (s_text_of (result), text_part))
        fail_msg ("%s: \"%s\" not in \"%s\"", corr_id, text_part, s_text_of (result));
    json_decref (result);
}

static void
test_missing (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    const char *missing = "{\"status\":\"missing\",\"detail\":\"No connection yet.\","
                          "\"connect_url\":\"" CONNECT_URL "\"}";
    //  A 2026-07-28 call from a client without URL-mode elicitation: the link
    s_send_call ("n-1", "newco", "user:ny", "tcrm_get_account", "acc_0001", CALL_MS, "{}",
                 0x02 /* SB_JOB_CAP_ELICITATION: form mode only */);
    s_expect_request ("n-1", "newco", "user:ny", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, missing);
    s_expect_connect_error ("n-1", "connection_required", CONNECT_URL,
                            "To use the CRM, connect your account: " CONNECT_URL " — then ask again.");

    //  A session's call: the worker asks; the gateway refuses for a client
    //  that did not declare URL mode; the link again
    s_send_call ("n-2", "newco", "user:ny", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("n-2", "newco", "user:ny", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, missing);
    uint32_t ask_id = 0;
    char *ask = NULL;
    assert_int_equal (fake_broker_ask (s_broker, "n-2", WAIT_MS, &ask_id, &ask), 0);
    free (ask);
    assert_int_equal (fake_broker_answer (s_broker, "n-2", ask_id,
                      "{\"error\":{\"code\":-32601,\"message\":\"the client cannot answer "
                      "elicitation/create (it did not declare the capability in its session)\"}}"), 0);
    s_expect_connect_error ("n-2", "connection_required", CONNECT_URL, "connect your account");

    //  Broken, with a link
    s_send_call ("n-3", "brokenco", "user:bz", "tcrm_get_account", "acc_0001", CALL_MS, "{}", 0);
    s_expect_request ("n-3", "brokenco", "user:bz", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"broken\",\"detail\":\"The provider refused the "
             "grant: it was revoked.\",\"connect_url\":\"" CONNECT_URL "\"}");
    s_expect_connect_error ("n-3", "connection_broken", CONNECT_URL,
                            "The connection to the CRM no longer works (The provider refused");

    //  An API-key connection: no link, an administrator adds the key
    s_send_call ("n-4", "keyless", "user:kl", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("n-4", "keyless", "user:kl", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"missing\",\"detail\":\"No API key yet.\"}");
    s_expect_connect_error ("n-4", "connection_required", NULL, "sb-admin connections add-key");
}

//  The URL-mode question for call `corr_id`: checks it, returns its ask id.
static uint32_t
s_expect_connect_ask (const char *corr_id)
{
    uint32_t ask_id = 0;
    char *text = NULL;
    assert_int_equal (fake_broker_ask (s_broker, corr_id, WAIT_MS, &ask_id, &text), 0);
    json_t *ask = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (ask);
    assert_string_equal (json_string_value (json_object_get (ask, "method")), "elicitation/create");
    json_t *params = json_object_get (ask, "params");
    assert_string_equal (json_string_value (json_object_get (params, "mode")), "url");
    assert_string_equal (json_string_value (json_object_get (params, "url")), CONNECT_URL);
    assert_string_equal (json_string_value (json_object_get (params, "message")),
                         "Connect the CRM to continue");
    const char *id = json_string_value (json_object_get (params, "elicitationId"));
    assert_non_null (id);
    assert_int_equal (strlen (id), 32);
    assert_int_equal (strspn (id, "0123456789abcdef"), 32);
    json_decref (ask);
    return ask_id;
}

static void
test_url_elicitation (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    const char *missing = "{\"status\":\"missing\",\"connect_url\":\"" CONNECT_URL "\"}";
    s_send_call ("u-1", "joiner", "user:jo", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("u-1", "joiner", "user:jo", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, missing);
    uint32_t ask_id = s_expect_connect_ask ("u-1");
    int64_t accepted = zclock_mono ();
    assert_int_equal (fake_broker_answer (s_broker, "u-1", ask_id, "{\"result\":{\"action\":\"accept\"}}"), 0);
    //  Polled every SB_API_CONNECT_POLL_MS (2 s): not yet, then connected
    s_expect_request ("u-1", "joiner", "user:jo", "tenant-crm", "{}", CALL_MS, request);
    assert_true (zclock_mono () - accepted >= 1900);
    s_reply (request, SB_STATUS_OK, missing);
    s_expect_request ("u-1", "joiner", "user:jo", "tenant-crm", "{}", CALL_MS, request);
    assert_true (zclock_mono () - accepted >= 3800);
    s_reply_connected (request, "joiner-1", 1, 3600);
    s_expect_account ("u-1", "Bearer joiner-1");

    //  Declined: the link, no poll
    s_send_call ("u-2", "shy", "user:sh", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("u-2", "shy", "user:sh", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, missing);
    ask_id = s_expect_connect_ask ("u-2");
    assert_int_equal (fake_broker_answer (s_broker, "u-2", ask_id, "{\"result\":{\"action\":\"decline\"}}"), 0);
    s_expect_connect_error ("u-2", "connection_required", CONNECT_URL, "was declined");

    //  Accepted, but the call's time runs short before the connection is made
    s_send_call ("u-3", "slowpoke", "user:sp", "tcrm_get_account", "acc_0001", 5000, NULL, 0);
    s_expect_request ("u-3", "slowpoke", "user:sp", "tenant-crm", "{}", 5000, request);
    s_reply (request, SB_STATUS_OK, missing);
    ask_id = s_expect_connect_ask ("u-3");
    assert_int_equal (fake_broker_answer (s_broker, "u-3", ask_id, "{\"result\":{\"action\":\"accept\"}}"), 0);
    s_expect_request ("u-3", "slowpoke", "user:sp", "tenant-crm", "{}", 5000, request);
    s_reply (request, SB_STATUS_OK, missing);
    s_expect_connect_error ("u-3", "connection_required", CONNECT_URL, "not made while this call could wait");

    //  A 2026-07-28 call whose client takes URL mode: the question goes
    //  back as an input-required result under the key "connect"
    s_send_call ("u-4", "modern", "user:mo", "tcrm_get_account", "acc_0001", CALL_MS, "{}",
                 0x08 /* SB_JOB_CAP_ELICIT_URL */);
    s_expect_request ("u-4", "modern", "user:mo", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, missing);
    json_t *result = s_expect_result ("u-4", WAIT_MS);
    json_t *connect = json_object_get (json_object_get (result, "inputRequests"), "connect");
    if (!connect) {
        char *dump = json_dumps (result, JSON_COMPACT);
        fail_msg ("no inputRequests.connect in %s", dump);
    }
    assert_string_equal (json_string_value (json_object_get (json_object_get (connect, "params"),
                                                             "url")), CONNECT_URL);
    json_decref (result);
}

//  Sends a ping behind the jobs already sent and waits for its RESULT
//  (the worker takes its jobs in order): returns the one REQUEST that came
//  meanwhile in `request` (its parent in `parent`), failing on more.
static void
s_sync_one_request (char *request, char *parent)
{
    assert_int_equal (fake_broker_send_op (s_broker, "sync", 5000, 0, "ping", NULL, NULL), 0);
    int requests = 0;
    while (true) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
        if (msg.command == SB_CMD_RESULT && streq (msg.corr_id, "sync")) {
            sb_msg_reset (&msg);
            break;
        }
        assert_int_equal (msg.command, SB_CMD_REQUEST);
        snprintf (request, SB_MAX_CORR_ID_LEN + 1, "%s", msg.corr_id);
        snprintf (parent, SB_MAX_CORR_ID_LEN + 1, "%s", msg.parent);
        requests++;
        sb_msg_reset (&msg);
    }
    assert_int_equal (requests, 1);
}

//  Two users of one tenant at once: a credential is the tenant's and is
//  shared; a connect link is signed for one user, so the other asks anew.
static void
test_users_of_one_tenant (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1], parent [SB_MAX_CORR_ID_LEN + 1];
    s_send_call ("p-1", "team", "user:a", "tcrm_get_account", "acc_0001", CALL_MS, "{}", 0);
    s_send_call ("p-2", "team", "user:b", "tcrm_get_account", "acc_0001", CALL_MS, "{}", 0);
    s_sync_one_request (request, parent);
    assert_string_equal (parent, "p-1");
    s_reply (request, SB_STATUS_OK, "{\"status\":\"missing\",\"connect_url\":\"" CONNECT_URL "-a\"}");
    s_expect_connect_error ("p-1", "connection_required", CONNECT_URL "-a", "connect your account");
    s_expect_request ("p-2", "team", "user:b", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"missing\",\"connect_url\":\"" CONNECT_URL "-b\"}");
    s_expect_connect_error ("p-2", "connection_required", CONNECT_URL "-b", "connect your account");

    s_send_call ("p-3", "team", "user:a", "tcrm_get_account", "acc_0001", CALL_MS, "{}", 0);
    s_send_call ("p-4", "team", "user:b", "tcrm_get_account", "acc_0001", CALL_MS, "{}", 0);
    s_sync_one_request (request, parent);
    assert_string_equal (parent, "p-3");
    s_reply_connected (request, "team-secret", 1, 3600);
    for (int i = 0; i < 2; i++) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
        assert_int_equal (msg.command, SB_CMD_RESULT);
        assert_true (streq (msg.corr_id, "p-3") || streq (msg.corr_id, "p-4"));
        sb_msg_reset (&msg);
    }
    char auth [256];
    fake_upstream_last_auth (s_up, auth, sizeof auth);
    assert_string_equal (auth, "Bearer team-secret");
}

static void
test_token_service_trouble (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1];
    //  RESULT failed: its sentence and retry_after
    s_send_call ("t-1", "troubled", "user:tr", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("t-1", "troubled", "user:tr", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_FAILED, "{\"error\":\"the connection store could not be reached\","
             "\"retry_after\":5}");
    json_t *result = s_expect_result ("t-1", WAIT_MS);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_meta (result, "error_type"), "credentials_failed");
    assert_string_equal (s_text_of (result), "The connection store could not be reached");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (result, "_meta"),
                                                           "retry_after")), 5);
    json_decref (result);

    //  No token service (the broker says unavailable)
    s_send_call ("t-2", "troubled", "user:tr", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("t-2", "troubled", "user:tr", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_UNAVAILABLE, NULL);
    s_expect_connect_error ("t-2", "credentials_unavailable", NULL,
                            "could not get the credentials for the CRM in time");

    //  Nobody answers: the request's own deadline (the call's time less
    //  what the call needs) ends it, and the call still gets a sentence
    int64_t start = zclock_mono ();
    s_send_call ("t-3", "silent", "user:si", "tcrm_get_account", "acc_0001", 6000, NULL, 0);
    s_expect_request ("t-3", "silent", "user:si", "tenant-crm", "{}", 4000, request);
    s_expect_connect_error ("t-3", "credentials_unavailable", NULL,
                            "could not get the credentials for the CRM in time");
    assert_true (zclock_mono () - start < 6000);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"connected\",\"kind\":\"oauth2\",\"secret\":"
             "\"late\",\"version\":1}");       //  too late: dropped
    assert_int_equal (fake_broker_send_op (s_broker, "sync", 5000, 0, "ping", NULL, NULL), 0);
    json_t *pong = s_expect_result ("sync", WAIT_MS);
    json_decref (pong);

    //  An answer that is not one: unavailable too
    s_send_call ("t-4", "garbled", "user:ga", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("t-4", "garbled", "user:ga", "tenant-crm", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"connected\",\"secret\":\"\"}");
    s_expect_connect_error ("t-4", "credentials_unavailable", NULL, "in time");
}

static void
test_instance_url (void **state)
{
    char request [SB_MAX_CORR_ID_LEN + 1], json [512];
    fake_upstream_reset (s_up);
    s_send_call ("i-1", "inst", "user:in", "tinst_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("i-1", "inst", "user:in", "tenant-instance", "{}", CALL_MS, request);
    snprintf (json, sizeof json, "{\"status\":\"connected\",\"kind\":\"oauth2\",\"secret\":\"inst-1\","
              "\"version\":1,\"expires_in\":3600,\"vars\":{\"instance_url\":\"%s\"}}",
              fake_upstream_url (s_up));
    s_reply (request, SB_STATUS_OK, json);
    s_expect_account ("i-1", "Bearer inst-1");
    assert_int_equal (fake_upstream_requests (s_up), 1);

    //  Without the var (or with one that is no URL): reconnect
    s_send_call ("i-2", "novar", "user:nv", "tinst_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("i-2", "novar", "user:nv", "tenant-instance", "{}", CALL_MS, request);
    s_reply (request, SB_STATUS_OK, "{\"status\":\"connected\",\"kind\":\"oauth2\",\"secret\":\"nv\","
             "\"version\":1,\"expires_in\":3600,\"vars\":{\"instance_url\":\"ftp://x\"}}");
    s_expect_connect_error ("i-2", "connection_broken", NULL, "The connection to the instance CRM "
                            "no longer works");
    assert_int_equal (fake_upstream_requests (s_up), 1);
}

//  SB_API_CREDS_MAX + 1 more tenants: the cache stays bounded, the oldest
//  entry (acme's, from test_two_tenants, in the first slot) goes first
//  and the newest stays. Batches of calls at once keep it quick.
static void
test_cache_bound (void **state)
{
    const int total = SB_API_CREDS_MAX + 1, batch = 100;
    fake_upstream_reset (s_up);
    for (int first = 0; first < total; first += batch) {
        int count = first + batch <= total ? batch : total - first;
        for (int i = first; i < first + count; i++) {
            char corr_id [32], tenant [32];
            snprintf (corr_id, sizeof corr_id, "b-%d", i);
            snprintf (tenant, sizeof tenant, "bound-%d", i);
            s_send_call (corr_id, tenant, "user:b", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
        }
        int results = 0, requests = 0;
        while (results < count) {
            sb_msg_t msg = { 0 };
            assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
            if (msg.command == SB_CMD_REQUEST) {
                char secret [SB_MAX_CORR_ID_LEN + 3];
                snprintf (secret, sizeof secret, "s-%s", msg.parent);
                s_reply_connected (msg.corr_id, secret, 1, 3600);
                requests++;
            }
            else {
                assert_int_equal (msg.command, SB_CMD_RESULT);
                assert_int_equal (msg.status, SB_STATUS_OK);
                results++;
            }
            sb_msg_reset (&msg);
        }
        assert_int_equal (requests, count);
    }
    assert_int_equal (fake_upstream_requests (s_up), total);
    char request [SB_MAX_CORR_ID_LEN + 1], newest [32];
    snprintf (newest, sizeof newest, "bound-%d", total - 1);
    s_send_call ("b-new", newest, "user:b", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    char auth [64];
    snprintf (auth, sizeof auth, "Bearer s-b-%d", total - 1);
    s_expect_account ("b-new", auth);
    s_send_call ("b-old", "acme", "user:ann", "tcrm_get_account", "acc_0001", CALL_MS, NULL, 0);
    s_expect_request ("b-old", "acme", "user:ann", "tenant-crm", "{}", CALL_MS, request);
    s_reply_connected (request, "acme-secret-2", 2, 3600);
    s_expect_account ("b-old", "Bearer acme-secret-2");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_two_tenants),
        cmocka_unit_test (test_single_flight),
        cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_401_renews_once),
        cmocka_unit_test (test_missing),
        cmocka_unit_test (test_url_elicitation),
        cmocka_unit_test (test_users_of_one_tenant),
        cmocka_unit_test (test_token_service_trouble),
        cmocka_unit_test (test_instance_url),
        cmocka_unit_test (test_cache_bound),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
