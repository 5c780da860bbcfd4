# tests/sandbox.cmake — the real sb-sandbox process: its REST API, errors,
# fault injection, robustness against malformed requests, and every tool of
# connectors/sandbox-crm.json rendered, sent and mapped against it.
sb_add_test(35_sandbox_api SOURCES 35_sandbox_api.c
            LIBS sb_harness sb_connector PkgConfig::CMOCKA PkgConfig::JANSSON PkgConfig::CURL
            TIMEOUT 120)
add_dependencies(35_sandbox_api sb-sandbox)
