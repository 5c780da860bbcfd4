# tests/interop.cmake — software others wrote, run against a real farm:
# the official MCP conformance suite (@modelcontextprotocol/conformance) and
# the official TypeScript SDK client (@modelcontextprotocol/sdk), under Node 22
# from tests/interop/node_modules (npm ci from the committed
# package-lock.json; see tests/interop/README.md). Each test starts its own
# farm (sandbox, broker, api worker, gateway, auth proxy) on free ports, with
# the conformance fixtures (tests/fixtures/: their connectors and the test
# worker sb-worker-fixtures), and stops it by PID; a farm process that does
# not exit 0 fails the test.

set(SB_INTEROP_DIR ${CMAKE_SOURCE_DIR}/tests/interop)
set(SB_INTEROP_BINARIES
    $<TARGET_FILE:sb-sandbox> $<TARGET_FILE:sb-broker> $<TARGET_FILE:sb-worker-fixtures>
    $<TARGET_FILE:sb-gateway> $<TARGET_FILE:sb-token>)

# Node 22 and the pinned packages, installed once per run (a no-op when
# node_modules already matches package-lock.json).
add_test(NAME 60_interop_npm COMMAND ${SB_INTEROP_DIR}/npm-ci.sh)
set_tests_properties(60_interop_npm PROPERTIES
    FIXTURES_SETUP interop_node TIMEOUT 600 RUN_SERIAL TRUE)

# Every server scenario, active and pending (spec 2025-06-18 and 2025-11-25), against the
# baseline tests/interop/conformance-baseline.yml: a new failure fails, and
# so does a listed scenario that now passes.
add_test(NAME 60_interop_conformance
         COMMAND ${SB_INTEROP_DIR}/run-conformance.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/interop-conformance)
set_tests_properties(60_interop_conformance PROPERTIES
    FIXTURES_REQUIRED interop_node TIMEOUT 300 RUN_SERIAL TRUE
    REQUIRED_FILES "${SB_INTEROP_BINARIES}")

# The 0.2 line of the suite (the `conformance-next` alias, 0.2.0-alpha.N): the
# server scenarios each published requirement set (`--requirements REV`)
# requires, plus the ones it runs unscored, each against its own baseline
# tests/interop/conformance-baseline-next-REV.yml. 2026-07-28's baseline is the
# to-do list for that revision.
foreach(rev 2025-11-25 2026-07-28)
    string(REPLACE "-" "_" rev_ ${rev})
    add_test(NAME 60_interop_conformance_next_${rev_}
             COMMAND ${SB_INTEROP_DIR}/run-conformance-next.sh ${rev} ${CMAKE_BINARY_DIR}
                     ${CMAKE_BINARY_DIR}/interop-conformance-next-${rev})
    set_tests_properties(60_interop_conformance_next_${rev_} PROPERTIES
        FIXTURES_REQUIRED interop_node TIMEOUT 300 RUN_SERIAL TRUE
        REQUIRED_FILES "${SB_INTEROP_BINARIES}")
endforeach()

# The official TypeScript SDK client: connect, page tools, call, progress,
# elicitation, cancel.
add_test(NAME 60_interop_sdk_client
         COMMAND ${SB_INTEROP_DIR}/run-node-tests.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/interop-sdk ${SB_INTEROP_DIR}/sdk-client.test.mjs)
set_tests_properties(60_interop_sdk_client PROPERTIES
    FIXTURES_REQUIRED interop_node TIMEOUT 300 RUN_SERIAL TRUE
    REQUIRED_FILES "${SB_INTEROP_BINARIES}")
