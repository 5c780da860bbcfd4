# tests/workers.cmake — the workers' event loop (unit), then sb-worker as a
# real process against a fake broker and a fake upstream
# (tests/38_workers_fake.c), the real sandbox, and (token role) the real test
# PostgreSQL. Tests that run the conformance fixtures start the test worker
# sb-worker-fixtures (tests/fixtures.cmake) instead.

# The event loop on its own.
# The blocking-work pool: an Argon2id hash while the loop keeps turning.
sb_add_test(38_workers_offload
    SOURCES 38_workers_offload.c
    LIBS sb_workers_lib sb_password PkgConfig::CMOCKA
    TIMEOUT 120)

sb_add_test(38_workers_reactor
    SOURCES 38_workers_reactor.c
    LIBS sb_workers_lib PkgConfig::CMOCKA
    TIMEOUT 30)

# A provider's token endpoint client (workers/sb_provider.c) against a fake
# token endpoint in the test: forms, client authentication, outcomes.
sb_add_test(38_workers_provider
    SOURCES 38_workers_provider.c 38_fake_provider.c
    LIBS sb_workers_lib sb_harness PkgConfig::CMOCKA PkgConfig::JANSSON pthread
    TIMEOUT 60)

set(SB_WORKERS_TEST_LIBS sb_proto sb_common sb_harness PkgConfig::CMOCKA PkgConfig::CZMQ
    PkgConfig::ZMQ PkgConfig::JANSSON pthread)

# connection/credential (workers/sb_connections.c, migration 012) on two
# token worker processes against the fake token endpoint: fresh, one
# refresh for 50 jobs in one worker and for 40 over two (the lease), stale
# versions, invalid_grant (broken, audited), 503 backoff, a provider that
# does not rotate, the proactive sweep, refusals.
sb_add_test(38_workers_connections
    SOURCES 38_workers_connections.c 38_workers_fake.c 38_fake_provider.c
    LIBS ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_connections sb-worker)

sb_add_test(38_workers_api
    SOURCES 38_workers_api.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 120)
add_dependencies(38_workers_api sb-worker sb-worker-fixtures)

# Tenant credentials: the api worker asks the token service (the fake
# broker answers as it) for each tenant's credential.
sb_add_test(38_workers_api_creds
    SOURCES 38_workers_api_creds.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 120)
add_dependencies(38_workers_api_creds sb-worker)
# The same through the real broker (in process), with a fake token worker.
sb_add_test(38_workers_api_creds_broker
    SOURCES 38_workers_api_creds_broker.c 38_workers_fake.c
    LIBS sb_workers_lib sb_broker_testsupport ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 120)
add_dependencies(38_workers_api_creds_broker sb-worker)

sb_add_test(38_workers_roles
    SOURCES 38_workers_roles.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 120)
add_dependencies(38_workers_roles sb-worker)

# The same worker against the real sandbox SaaS, once sb-sandbox exists.
if(TARGET sb-sandbox)
    sb_add_test(38_workers_sandbox
        SOURCES 38_workers_sandbox.c 38_workers_fake.c
        LIBS ${SB_WORKERS_TEST_LIBS}
        TIMEOUT 120)
    add_dependencies(38_workers_sandbox sb-worker sb-sandbox)
endif()

# CANCEL reaching a worker mid-upstream-call.
sb_add_test(38_workers_cancel
    SOURCES 38_workers_cancel.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 60)
add_dependencies(38_workers_cancel sb-worker)

# MCP 2026-07-28 input-required results: jobs carrying the client's answers.
sb_add_test(38_workers_inputs
    SOURCES 38_workers_inputs.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 60)
add_dependencies(38_workers_inputs sb-worker sb-worker-fixtures)

# SIGHUP reloads the api worker's connectors while a job is in flight.
sb_add_test(38_workers_reload
    SOURCES 38_workers_reload.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS}
    TIMEOUT 60)
add_dependencies(38_workers_reload sb-worker sb-worker-fixtures)

# The task role (the MCP Tasks extension's store) against the real test
# PostgreSQL: every op, the run deadline, expiry and the sweep, racing updates.
sb_add_test(38_workers_task
    SOURCES 38_workers_task.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 120)
add_dependencies(38_workers_task sb-worker)

# The token role's oauth/authorize op (the sign-in and consent page) against
# the real test PostgreSQL: the page, its errors, CSRF, Deny, a sign-in that
# issues a code, refused sign-ins and the brake, a cancel while hashing.
sb_add_test(38_workers_authorize
    SOURCES 38_workers_authorize.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS} sb_payload sb_password PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 120)
add_dependencies(38_workers_authorize sb-worker)

# The token role's connect flow (issue 21) against the real test PostgreSQL
# and a fake provider token endpoint in the test: tickets, the page, the
# POST's redirect and flow, the callback's exchange and stored connection,
# and every refusal (state reuse, another browser, expiry, the provider's).
sb_add_test(38_workers_connect
    SOURCES 38_workers_connect.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 120)
add_dependencies(38_workers_connect sb-worker)

# The token role's /token, /revoke and key set (issue 20) against the real
# test PostgreSQL: codes, refresh rotation and reuse, revocation, client
# authentication, malformed requests, signing-key creation and rotation
# (one worker in-process, so the test can call sb_oauth_keys_rotate).
sb_add_test(38_workers_oauth_token
    SOURCES 38_workers_oauth_token.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_oauth_token sb-worker)

# The admin API (op admin/http of the token role) against the real test
# PostgreSQL: every route, its refusals, and the rows each change leaves.
sb_add_test(38_workers_admin
    SOURCES 38_workers_admin.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS} sb_payload sb_password PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_admin sb-worker)

# The quota service of the token role (workers/sb_quota_sync.c) against a
# fake broker and the real test PostgreSQL behind a proxy the test cuts:
# the LIMITS snapshot on want (2,500 tenants in parts), USAGE stored once
# per seq and ACKed, changes pushed within 2 s, no ACK without a database.
sb_add_test(38_workers_quota_sync
    SOURCES 38_workers_quota_sync.c 38_workers_fake.c
    LIBS ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_quota_sync sb-worker)

# The quota service's SQL (migration 014): limits' versions in commit
# order, quota_tenants_since paging, quota_usage_record counting a batch
# once, quota_period_start; on a fresh database of the test cluster.
sb_add_test(38_workers_quota_sql
    SOURCES 38_workers_quota_sql.c
    LIBS sb_db sb_common sb_harness PkgConfig::CMOCKA PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 120)

# sb-admin's arguments, requests and exit codes against a tiny HTTP server
# in the test (the end-to-end run through a gateway comes with its relay).
sb_add_test(38_admin_cli
    SOURCES 38_admin_cli.c
    LIBS sb_harness PkgConfig::CMOCKA PkgConfig::JANSSON pthread
    TIMEOUT 60)
add_dependencies(38_admin_cli sb-admin)

# Client registration in the token role: oauth/register (RFC 7591) and
# Client ID Metadata Documents fetched from an HTTPS server with a test CA
# made by the test (openssl CLI), the SSRF guard, the cache, single flight.
sb_add_test(38_workers_register
    SOURCES 38_workers_register.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ PkgConfig::OPENSSL
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_register sb-worker)

# The data keys that seal connection secrets, storing connections and the
# admin API's connection routes, against the real test PostgreSQL: two
# sb-worker processes and one in-process token worker (test ops that seal
# and open), every worker on the shared test master secret.
sb_add_test(38_workers_conn_keys
    SOURCES 38_workers_conn_keys.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_conn_keys sb-worker)

# A worker asking another service from inside a job (sb_worker_request):
# the real broker in-process and two worker cores with test roles, in threads.
sb_add_test(38_workers_request
    SOURCES 38_workers_request.c
    LIBS sb_workers_lib sb_broker_testsupport PkgConfig::CMOCKA
    TIMEOUT 120)

# The webhook role's key ring (workers/sb_wh_keys.c) on rows sealed by the
# token role's own functions, no database (results made in memory).
sb_add_test(38_workers_wh_keys
    SOURCES 38_workers_wh_keys.c
    LIBS sb_workers_lib PkgConfig::CMOCKA PkgConfig::PQ
    TIMEOUT 30)
# Webhooks (issue 23): the providers' verification rules (workers/sb_wh_verify.c),
# pure: every scheme good, tampered, wrong secret, stale, rolled, rotated,
# malformed; Slack's challenge; Salesforce's Ack, organisation check, DTD
# and entity bomb refused, 100 notifications and 101.
sb_add_test(12_wh_verify_unit
    SOURCES 12_wh_verify_unit.c
    LIBS sb_workers_lib PkgConfig::CMOCKA
    TIMEOUT 60)
# The same rules against the providers' own libraries (npm, tests/webhooks,
# pinned by its package-lock.json): installed into the build folder once,
# then requests signed by stripe, @octokit/webhooks-methods,
# standardwebhooks and svix checked by sb_wh_verify, and sb_wh_sign_standard's
# signatures checked by standardwebhooks and svix.
set(SB_WH_NODE_DIR ${CMAKE_BINARY_DIR}/webhooks-node)
add_test(NAME 38_wh_npm COMMAND ${CMAKE_SOURCE_DIR}/tests/webhooks/npm-ci.sh ${SB_WH_NODE_DIR})
set_tests_properties(38_wh_npm PROPERTIES FIXTURES_SETUP wh_node TIMEOUT 600)
add_test(NAME 38_wh_fixtures
         COMMAND ${SB_WH_NODE_DIR}/node_modules/.bin/node ${SB_WH_NODE_DIR}/sign-fixtures.mjs
                 ${SB_WH_NODE_DIR}/fixtures.jsonl)
set_tests_properties(38_wh_fixtures PROPERTIES
    FIXTURES_REQUIRED wh_node FIXTURES_SETUP wh_fixtures TIMEOUT 60)
sb_add_test(38_workers_wh_verify_libs
    SOURCES 38_workers_wh_verify_libs.c
    LIBS sb_workers_lib PkgConfig::CMOCKA PkgConfig::JANSSON
    ARGS ${SB_WH_NODE_DIR}/fixtures.jsonl ${SB_WH_NODE_DIR}/outbound.jsonl
    FIXTURES wh_fixtures
    TIMEOUT 60)
set_tests_properties(38_workers_wh_verify_libs PROPERTIES FIXTURES_SETUP wh_outbound)
add_test(NAME 38_wh_outbound_verify
         COMMAND ${SB_WH_NODE_DIR}/node_modules/.bin/node ${SB_WH_NODE_DIR}/verify-outbound.mjs
                 ${SB_WH_NODE_DIR}/outbound.jsonl)
set_tests_properties(38_wh_outbound_verify PROPERTIES
    FIXTURES_REQUIRED "wh_node;wh_outbound" TIMEOUT 60)
# The verifiers face the network: their fuzz target (seeds replayed by ctest).
sb_add_fuzz(fuzz_wh_verify SOURCE fuzz/fuzz_wh_verify.c
            CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/wh_verify LIBS sb_workers_lib)

# The admin API's webhook routes (workers/sb_wh_admin.c, migration 018)
# against the real test PostgreSQL: endpoints and their sealed secrets,
# rotation with an overlap, subscriptions, dead letters and replay, events,
# attempts, and the data-key reseal of webhook rows. It and
# 38_workers_conn_keys rotate the cluster's one data key and reseal every
# row: they never run at once.
sb_add_test(38_workers_admin_webhooks
    SOURCES 38_workers_admin_webhooks.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_admin_webhooks sb-worker)
set_tests_properties(38_workers_admin_webhooks 38_workers_conn_keys
                     PROPERTIES RESOURCE_LOCK connection_keys)

# The webhook role's inbound half (workers/sb_webhook_role.c, sb_wh_ingest.c,
# migration 016): two webhook workers (group commit; --webhook-batch-max 1)
# against fake brokers and the real test PostgreSQL behind a proxy the test
# cuts, endpoint secrets sealed by an in-process token role: stored once and
# answered after commit, refusals, deliveries, events/read, PUBLISH, 503
# while the database is away, group commit under 300 requests at once.
sb_add_test(38_workers_webhook_ingest
    SOURCES 38_workers_webhook_ingest.c 38_workers_fake.c
    LIBS sb_workers_lib ${SB_WORKERS_TEST_LIBS} PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)
add_dependencies(38_workers_webhook_ingest sb-worker)

# The webhook deliverer (workers/sb_wh_deliver.c, migration 017) in this
# process against the real test PostgreSQL and a receiver in the test:
# delivered and signed (checked with sb_wh_verify), 500/hang/reset retried
# then dead and replayed, the SSRF guard, rate and in-flight limits, a
# killed deliverer's leases taken over, disable after the failing window.
sb_add_test(38_workers_webhook_deliver
    SOURCES 38_workers_webhook_deliver.c
    LIBS sb_workers_lib sb_harness PkgConfig::CMOCKA PkgConfig::PQ PkgConfig::JANSSON pthread
    FIXTURES postgres
    TIMEOUT 120)
add_dependencies(38_workers_webhook_deliver sb-worker)
