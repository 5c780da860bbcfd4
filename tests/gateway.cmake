# tests/gateway.cmake — crypto and token unit tests, the gateway's JSON-RPC
# unit tests, its HTTP integration test and the fuzz-corpus replays of the
# decoders that face the network (JSON-RPC, token, session, headers, requestState).
sb_add_test(12_crypto_unit SOURCES 12_crypto_unit.c LIBS sb_common PkgConfig::CMOCKA)
sb_add_test(12_password_unit SOURCES 12_password_unit.c LIBS sb_password PkgConfig::CMOCKA)
sb_add_test(13_token_unit SOURCES 13_token_unit.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(13_scope_unit SOURCES 13_scope_unit.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(13_revoke_unit SOURCES 13_revoke_unit.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(30_gateway_rpc SOURCES 30_gateway_rpc.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(30_gateway_session SOURCES 30_gateway_session.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(30_gateway_ratelimit SOURCES 30_gateway_ratelimit.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(30_gateway_param_header SOURCES 30_gateway_param_header.c
            LIBS sb_gateway_lib PkgConfig::CMOCKA)
sb_add_test(30_gateway_http SOURCES 30_gateway_http.c
            LIBS sb_harness sb_proto sb_gateway_lib sb_connector PkgConfig::CURL PkgConfig::CZMQ
                 PkgConfig::CMOCKA PkgConfig::JANSSON
            TIMEOUT 120)
add_dependencies(30_gateway_http sb-gateway)
find_package(Threads REQUIRED)
sb_add_test(30_gateway_calls SOURCES 30_gateway_calls.c 30_gateway_support.c
            LIBS sb_harness sb_proto sb_gateway_lib PkgConfig::CURL PkgConfig::CZMQ PkgConfig::CMOCKA
                 PkgConfig::JANSSON Threads::Threads
            TIMEOUT 120)
add_dependencies(30_gateway_calls sb-gateway)
# Failures answered at once: no worker (the broker says so), the broker
# killed (the gateway says so), the broker back (calls flow again).
sb_add_test(30_gateway_broker_gone SOURCES 30_gateway_broker_gone.c
            LIBS sb_harness sb_proto sb_gateway_lib PkgConfig::CURL PkgConfig::CMOCKA
                 PkgConfig::JANSSON
            TIMEOUT 120)
add_dependencies(30_gateway_broker_gone sb-gateway sb-broker)
# The authorization server's routes and the admin API relayed as HTTP jobs,
# and the key set learnt from the token service (a fake broker plays it).
sb_add_test(30_gateway_oauth_relay SOURCES 30_gateway_oauth_relay.c
            LIBS sb_harness sb_proto sb_payload sb_gateway_lib PkgConfig::CURL PkgConfig::CZMQ
                 PkgConfig::CMOCKA PkgConfig::JANSSON
            TIMEOUT 120)
add_dependencies(30_gateway_oauth_relay sb-gateway)

# Fuzz target for POST /mcp bodies and REPLY payloads.
sb_add_fuzz(fuzz_jsonrpc SOURCE fuzz/fuzz_jsonrpc.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/jsonrpc
            LIBS sb_gateway_lib)
sb_add_test(30_gateway_modern SOURCES 30_gateway_modern.c 30_gateway_support.c
            LIBS sb_harness sb_proto sb_gateway_lib PkgConfig::CURL PkgConfig::CZMQ PkgConfig::CMOCKA
                 PkgConfig::JANSSON Threads::Threads
            TIMEOUT 120)
add_dependencies(30_gateway_modern sb-gateway)
sb_add_test(30_gateway_quotas SOURCES 30_gateway_quotas.c 30_gateway_support.c
            LIBS sb_harness sb_proto sb_gateway_lib PkgConfig::CURL PkgConfig::CZMQ PkgConfig::CMOCKA
                 PkgConfig::JANSSON Threads::Threads
            TIMEOUT 120)
add_dependencies(30_gateway_quotas sb-gateway)
sb_add_test(30_gateway_inputs SOURCES 30_gateway_inputs.c LIBS sb_gateway_lib PkgConfig::CMOCKA)
# Connector reloads: the subscription table, change detection, subscribe outcomes.
sb_add_test(30_gateway_subs SOURCES 30_gateway_subs.c 30_gateway_inproc.c
            LIBS sb_gateway_lib sb_harness PkgConfig::CURL PkgConfig::CMOCKA Threads::Threads)
sb_add_test(30_gateway_notify SOURCES 30_gateway_notify.c 30_gateway_inproc.c
            LIBS sb_gateway_lib sb_harness PkgConfig::CURL PkgConfig::CMOCKA Threads::Threads
            TIMEOUT 120)
add_dependencies(30_gateway_notify sb-gateway)
# MCP 2026-07-28 subscriptions/listen: the filter, the listen table, the streams.
sb_add_test(30_gateway_listen SOURCES 30_gateway_listen.c 30_gateway_inproc.c
            LIBS sb_gateway_lib sb_harness PkgConfig::CURL PkgConfig::CMOCKA Threads::Threads
            TIMEOUT 120)

# Fuzz targets for the other decoders that face the network: the bearer
# token, the session ID, Mcp-Param-* headers, requestState and the key set (JWKS).
foreach(target token session param_header request_state jwks)
    sb_add_fuzz(fuzz_${target} SOURCE fuzz/fuzz_${target}.c
                CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${target} LIBS sb_gateway_lib)
endforeach()

# The OAuth core (oauth/, lib sb_oauth): unit tests of every rule and RFC
# error, and the fuzz target of its form parser and request validators.
sb_add_test(18_oauth_unit SOURCES 18_oauth_unit.c LIBS sb_oauth PkgConfig::CMOCKA PkgConfig::JANSSON)
sb_add_fuzz(fuzz_oauth_form SOURCE fuzz/fuzz_oauth_form.c
            CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/oauth_form LIBS sb_oauth)

# HTTPS: the real sb-gateway with a test CA made by the openssl CLI, checked
# with curl, openssl s_client and a Node HTTP/2 client (reload on SIGHUP).
add_test(NAME 30_gateway_tls
         COMMAND ${CMAKE_SOURCE_DIR}/tests/30_gateway_tls.sh ${CMAKE_BINARY_DIR})
set_tests_properties(30_gateway_tls PROPERTIES TIMEOUT 120)

# Webhooks at the gateway (issue 23): POST /webhooks/{endpoint} relayed as
# webhook/receive jobs (a fake broker plays the webhook service), and a
# worker's resource_updated reaching its tenant's subscribed streams.
sb_add_test(30_gateway_webhooks SOURCES 30_gateway_webhooks.c 30_gateway_inproc.c
            LIBS sb_harness sb_proto sb_payload sb_gateway_lib PkgConfig::CURL PkgConfig::CZMQ
                 PkgConfig::CMOCKA PkgConfig::JANSSON Threads::Threads
            TIMEOUT 120)
add_dependencies(30_gateway_webhooks sb-gateway)
