# e2e — the whole farm as real processes: tool calls end to end, faults, bad input.
add_library(sb_farm STATIC sb_farm.c)
target_link_libraries(sb_farm PUBLIC sb_harness PkgConfig::JANSSON)
target_compile_definitions(sb_farm PRIVATE SB_TEST_CONNECTORS="${SB_TEST_CONNECTORS}")

foreach(t 40_e2e_tool_call 41_e2e_faults 42_e2e_bad_input)
    sb_add_test(${t} SOURCES ${t}.c LIBS sb_farm sb_proto PkgConfig::CMOCKA PkgConfig::JANSSON
                FIXTURES postgres TIMEOUT 180)
    set_tests_properties(${t} PROPERTIES RUN_SERIAL TRUE)
endforeach()

# MCP 2026-07-28 input-required rounds through the farm (no PostgreSQL needed).
sb_add_test(43_e2e_input_required SOURCES 43_e2e_input_required.c
            LIBS sb_farm sb_proto PkgConfig::CMOCKA PkgConfig::JANSSON TIMEOUT 180)
set_tests_properties(43_e2e_input_required PROPERTIES RUN_SERIAL TRUE)

# The tasks extension: the task worker's PostgreSQL store, two gateways.
sb_add_test(45_e2e_tasks SOURCES 45_e2e_tasks.c
            LIBS sb_farm sb_proto PkgConfig::CMOCKA PkgConfig::JANSSON PkgConfig::PQ FIXTURES postgres TIMEOUT 240)
set_tests_properties(45_e2e_tasks PROPERTIES RUN_SERIAL TRUE)

# Refused attempts on another's session, task, audience or scope reach the audit log.
sb_add_test(46_e2e_audit SOURCES 46_e2e_audit.c
            LIBS sb_farm PkgConfig::CMOCKA PkgConfig::JANSSON PkgConfig::PQ FIXTURES postgres TIMEOUT 180)
set_tests_properties(46_e2e_audit PROPERTIES RUN_SERIAL TRUE)

# Two gateways on one broker: ended sessions and log levels hold on both (BROADCAST).
find_package(Threads REQUIRED)
sb_add_test(44_e2e_cluster SOURCES 44_e2e_cluster.c
            LIBS sb_farm sb_proto PkgConfig::CMOCKA PkgConfig::CZMQ Threads::Threads TIMEOUT 180)
set_tests_properties(44_e2e_cluster PROPERTIES RUN_SERIAL TRUE)

# Issue 21 end to end (tests/47_e2e_connections.sh): two tenants connect
# their own grants at the sandbox's OAuth provider through /connect, the
# faults (200 calls on one expired grant over two token workers refresh
# once; a token worker killed mid-refresh; PostgreSQL and the provider
# down; invalid_grant; API keys; key rotation) and no secret in any log.
# scripts/farm.sh at debug level with its own PostgreSQL.
add_test(NAME 47_e2e_connections
         COMMAND ${CMAKE_SOURCE_DIR}/tests/47_e2e_connections.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/test-e2e-connections)
set_tests_properties(47_e2e_connections PROPERTIES TIMEOUT 420 RUN_SERIAL TRUE
    REQUIRED_FILES "$<TARGET_FILE:sb-sandbox>;$<TARGET_FILE:sb-broker>;$<TARGET_FILE:sb-worker>;$<TARGET_FILE:sb-worker-fixtures>;$<TARGET_FILE:sb-gateway>;$<TARGET_FILE:sb-token>;$<TARGET_FILE:sb-admin>")

# Issue 22 end to end (tests/47_e2e_quotas.sh): plans made with sb-admin
# enforced at the broker through three gateways at once (rate and burst
# counted under 40 clients, a plan change without restart, the monthly
# allowance with a tool of cost 5 kept over a broker restart, the in-flight
# cap with slow sandbox calls, a connector's upstream budget), the refusals'
# isError results and RateLimit headers, and the admin API's bad input and
# 429. scripts/farm.sh with its own PostgreSQL.
add_test(NAME 47_e2e_quotas
         COMMAND ${CMAKE_SOURCE_DIR}/tests/47_e2e_quotas.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/test-e2e-quotas)
set_tests_properties(47_e2e_quotas PROPERTIES TIMEOUT 420 RUN_SERIAL TRUE
    REQUIRED_FILES "$<TARGET_FILE:sb-sandbox>;$<TARGET_FILE:sb-broker>;$<TARGET_FILE:sb-worker>;$<TARGET_FILE:sb-gateway>;$<TARGET_FILE:sb-token>;$<TARGET_FILE:sb-admin>")

# Issue 23 end to end (tests/48_e2e_webhooks.sh): one farm; an endpoint per
# scheme made with sb-admin, payloads signed by the providers' own npm
# libraries (tests/webhooks' lock) accepted and stored once when sent
# twice, tampered / stale / wrongly signed ones 401, 413, Slack's
# challenge, a Salesforce Ack, a subscription delivering to a node receiver
# that verifies with standardwebhooks, notifications/resources/updated to
# a subscribed session, no secret in any log. scripts/farm.sh, debug level.
add_test(NAME 48_e2e_webhooks
         COMMAND ${CMAKE_SOURCE_DIR}/tests/48_e2e_webhooks.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/test-e2e-webhooks)
set_tests_properties(48_e2e_webhooks PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE FIXTURES_REQUIRED wh_node
    REQUIRED_FILES "$<TARGET_FILE:sb-sandbox>;$<TARGET_FILE:sb-broker>;$<TARGET_FILE:sb-worker>;$<TARGET_FILE:sb-gateway>;$<TARGET_FILE:sb-token>;$<TARGET_FILE:sb-admin>")

# Issue 23's faults (tests/48_e2e_webhook_faults.sh), one farm, the load from
# sb-webhook-bench: PostgreSQL stopped while webhooks arrive (5xx, never
# 2xx, while it is down; every 2xx'd event stored once; a resend stores the
# rest), the webhook worker SIGKILLed under load (the same), and a receiver
# that hangs, resets and answers 500 (three attempts recorded, dead,
# replayed with sb-admin, delivered).
add_test(NAME 48_e2e_webhook_faults
         COMMAND ${CMAKE_SOURCE_DIR}/tests/48_e2e_webhook_faults.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/test-e2e-webhook-faults)
set_tests_properties(48_e2e_webhook_faults PROPERTIES TIMEOUT 240 RUN_SERIAL TRUE FIXTURES_REQUIRED wh_node
    REQUIRED_FILES "$<TARGET_FILE:sb-sandbox>;$<TARGET_FILE:sb-broker>;$<TARGET_FILE:sb-worker>;$<TARGET_FILE:sb-gateway>;$<TARGET_FILE:sb-token>;$<TARGET_FILE:sb-admin>;$<TARGET_FILE:sb-webhook-bench>")
