# tests/oauth_e2e.cmake — issue 20's OAuth flow end to end with clients
# others wrote, against a farm on HTTPS (tests/oauth-e2e/farm.sh: a test CA
# made in the test, PostgreSQL, the token worker with --issuer and
# --secret-key-file, the gateway with --tls-cert-file, --public-url and
# --admin-key-file, tenant acme and user alice@acme.test made with sb-admin):
# the MCP TypeScript SDK client, oauth4webapi, and Debian's chromium driven
# by puppeteer-core; and every sb-admin command with key rotation
# (admin.test.mjs). Node 22 and the packages come from
# tests/oauth-e2e/package-lock.json (npm ci). Label `oauth_e2e`:
#   ctest -L oauth_e2e --output-on-failure

set(SB_OAUTH_E2E_DIR ${CMAKE_SOURCE_DIR}/tests/oauth-e2e)
set(SB_OAUTH_E2E_BINARIES
    $<TARGET_FILE:sb-sandbox> $<TARGET_FILE:sb-broker> $<TARGET_FILE:sb-worker>
    $<TARGET_FILE:sb-gateway> $<TARGET_FILE:sb-token> $<TARGET_FILE:sb-admin>)

add_test(NAME 60_oauth_npm
         COMMAND bash -c "source ${SB_OAUTH_E2E_DIR}/farm.sh && sb_oauth_deps")
set_tests_properties(60_oauth_npm PROPERTIES
    FIXTURES_SETUP oauth_node TIMEOUT 600 RUN_SERIAL TRUE LABELS oauth_e2e)

foreach(client sdk oauth4webapi browser isolation admin)
    add_test(NAME 60_oauth_${client}
             COMMAND ${SB_OAUTH_E2E_DIR}/run.sh ${CMAKE_BINARY_DIR}
                     ${CMAKE_BINARY_DIR}/oauth-e2e-${client} ${SB_OAUTH_E2E_DIR}/${client}.test.mjs)
    set_tests_properties(60_oauth_${client} PROPERTIES
        FIXTURES_REQUIRED oauth_node TIMEOUT 120 RUN_SERIAL TRUE LABELS oauth_e2e
        REQUIRED_FILES "${SB_OAUTH_E2E_BINARIES}")
endforeach()
# The isolation test greps the farm's logs for every code, token and
# password it saw: at debug level, so the most a farm writes is searched.
set_tests_properties(60_oauth_isolation PROPERTIES ENVIRONMENT "SB_LOG_LEVEL=debug")

# Issue 21 item 5: the connect flow against oidc-provider (npm, panva) as a
# tenant's SaaS, in headless chromium, and calls with that grant across
# refreshes (connect-oidc.sh writes the connector and runs
# connect_oidc.test.mjs through run.sh).
add_test(NAME 60_connect_oidc
         COMMAND ${SB_OAUTH_E2E_DIR}/connect-oidc.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/oauth-e2e-connect-oidc)
set_tests_properties(60_connect_oidc PROPERTIES
    FIXTURES_REQUIRED oauth_node TIMEOUT 120 RUN_SERIAL TRUE LABELS oauth_e2e
    REQUIRED_FILES "${SB_OAUTH_E2E_BINARIES}")
