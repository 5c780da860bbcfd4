# tests/infra.cmake — infrastructure tests: the harness itself, the
# PostgreSQL access layer against a real cluster, the compose file, and the
# README's first command (`scripts/up --check`).

sb_add_test(50_harness_selftest
    SOURCES 50_harness_selftest.c
    LIBS sb_harness PkgConfig::CMOCKA
    TIMEOUT 60)

add_test(NAME 50_pg_script
         COMMAND ${CMAKE_SOURCE_DIR}/tests/50_pg_script.sh ${CMAKE_BINARY_DIR}/test-pg-script)
set_tests_properties(50_pg_script PROPERTIES TIMEOUT 120)

sb_add_test(50_db_integration
    SOURCES 50_db_integration.c
    LIBS sb_db sb_common sb_harness PkgConfig::CMOCKA PkgConfig::PQ
    FIXTURES postgres
    TIMEOUT 180)

# No Docker engine here: Debian's docker-compose parses and validates the file.
# scripts/deps.sh installs docker-compose; without it this test fails, not skips.
find_program(SB_DOCKER_COMPOSE docker-compose)
if(NOT SB_DOCKER_COMPOSE)
    set(SB_DOCKER_COMPOSE docker-compose)
endif()
add_test(NAME 50_compose_config
         COMMAND ${CMAKE_SOURCE_DIR}/tests/50_compose_config.sh ${SB_DOCKER_COMPOSE}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(50_compose_config PROPERTIES TIMEOUT 60)

# The whole farm through the README's first command: one real tools/call.
# It builds nothing (SB_UP_NO_BUILD) and uses this build's binaries.
add_test(NAME 50_up_check
         COMMAND ${CMAKE_COMMAND} -E env SB_UP_NO_BUILD=1 SB_UP_NO_DEPS=1
                 SB_BUILD_DIR=${CMAKE_BINARY_DIR} SB_UP_FARM_DIR=${CMAKE_BINARY_DIR}/test-farm
                 SB_GATEWAY_PORT=0 SB_FARM_FSYNC=off
                 ${CMAKE_SOURCE_DIR}/scripts/up --check
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(50_up_check PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
