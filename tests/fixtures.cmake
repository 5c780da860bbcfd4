# tests/fixtures.cmake — the conformance fixtures, which are test code and
# never product (DESIGN §6): the connectors in tests/fixtures/connectors/
# (SB_TEST_CONNECTORS adds them to the product's folder) and
# sb-worker-fixtures, the product's own sb-worker main built with the
# fixtures (tests/fixtures/sb_fixture.c) as the api role's builtin tools.
# The e2e farms, the worker tests and the interop farm start it in place of
# sb-worker; its default --connectors is SB_TEST_CONNECTORS.
add_executable(sb-worker-fixtures ${CMAKE_SOURCE_DIR}/workers/sb_worker_main.c
    fixtures/sb_fixture.c fixtures/sb_fixture_builtins.c)
target_include_directories(sb-worker-fixtures PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
target_link_libraries(sb-worker-fixtures PRIVATE sb_workers_lib)
target_compile_definitions(sb-worker-fixtures PRIVATE
    SB_WORKER_BUILTINS=sb_fixture_builtins
    SB_DEFAULT_CONNECTORS_DIR="${SB_TEST_CONNECTORS}")
