# tests/sandbox.cmake — the real sb-sandbox process: its REST API, errors,
# fault injection, robustness against malformed requests, and every tool of
# connectors/sandbox-crm.json rendered, sent and mapped against it.
sb_add_test(35_sandbox_api SOURCES 35_sandbox_api.c
            LIBS sb_harness sb_connector PkgConfig::CMOCKA PkgConfig::JANSSON PkgConfig::CURL
            TIMEOUT 120)
add_dependencies(35_sandbox_api sb-sandbox)

# The sandbox's OAuth 2 provider (sandbox/sb_sandbox_oauth.h): code flow with
# PKCE, client authentication, refresh rotation and grace, expiry,
# revocation, token endpoint faults and the counters tests rely on.
sb_add_test(35_sandbox_oauth SOURCES 35_sandbox_oauth.c
            LIBS sb_harness sb_oauth PkgConfig::CMOCKA PkgConfig::JANSSON PkgConfig::CURL
            TIMEOUT 120)
add_dependencies(35_sandbox_oauth sb-sandbox)
