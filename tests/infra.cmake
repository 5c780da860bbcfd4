# tests/infra.cmake — infrastructure tests: the harness itself, the
# PostgreSQL access layer against a real cluster, the compose file (checked,
# then run under Docker), the cppcheck lint, and the README's first command
# (`scripts/up --check`).

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

# The compose file's shape, without an engine: Debian's docker-compose parses
# and validates it (scripts/deps.sh installs it; without it this fails).
find_program(SB_DOCKER_COMPOSE docker-compose)
if(NOT SB_DOCKER_COMPOSE)
    set(SB_DOCKER_COMPOSE docker-compose)
endif()
add_test(NAME 50_compose_config
         COMMAND ${CMAKE_SOURCE_DIR}/tests/50_compose_config.sh ${SB_DOCKER_COMPOSE}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(50_compose_config PROPERTIES TIMEOUT 60)

# The image built and the farm run from containers under a real engine
# (started by the test when none runs): health, the README's call, RLS,
# scaling, a killed worker, SIGHUP, down -v. It builds its own image from
# the sources, so it runs in the plain pass only, not again under
# SB_SANITIZE, and alone (its build takes both cores). Cold, with no base
# image cached in /var/lib/docker, it makes them first (docker/README.md).
if(NOT SB_SANITIZE)
    add_test(NAME 50_compose_up
             COMMAND ${CMAKE_SOURCE_DIR}/tests/50_compose_up.sh ${CMAKE_BINARY_DIR}/test-compose
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(50_compose_up PROPERTIES TIMEOUT 900 RUN_SERIAL TRUE
        LABELS container)
endif()

# The whole farm through the README's first command: one real tools/call,
# and a tools/list that names the CRM connector's tools only (no fixture).
# It builds nothing (SB_UP_NO_BUILD) and uses this build's binaries.
add_test(NAME 50_up_check
         COMMAND ${CMAKE_COMMAND} -E env SB_UP_NO_BUILD=1 SB_UP_NO_DEPS=1
                 SB_BUILD_DIR=${CMAKE_BINARY_DIR} SB_UP_FARM_DIR=${CMAKE_BINARY_DIR}/test-farm
                 SB_GATEWAY_PORT=0 SB_FARM_FSYNC=off
                 ${CMAKE_SOURCE_DIR}/scripts/up --check
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(50_up_check PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)

# scripts/up heals its farm: each kind of process killed (SIGKILL) is started
# again and tool calls are served again; SIGINT then stops everything.
add_test(NAME 50_up_heal
         COMMAND ${CMAKE_SOURCE_DIR}/tests/50_up_heal.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/test-farm-heal
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(50_up_heal PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)

# DESIGN §6 is the build's: a forbidden include does not compile, and a
# forbidden link fails configuration (cmake/sb_layers.cmake). Each case is
# built on demand and must fail for the stated reason.
foreach(case broker_includes_json:sb_broker_lib:sb_json.h
             gateway_includes_db:sb_gateway_lib:sb_db.h
             worker_includes_gateway:sb_workers_lib:sb_session.h)
    string(REPLACE ":" ";" parts ${case})
    list(GET parts 0 name)
    list(GET parts 1 lib)
    list(GET parts 2 header)
    add_executable(layers_${name} EXCLUDE_FROM_ALL layers/${name}.c)
    target_link_libraries(layers_${name} PRIVATE ${lib})
    add_test(NAME 12_layers_include_${name}
             COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target layers_${name})
    set_tests_properties(12_layers_include_${name} PROPERTIES TIMEOUT 120
        RESOURCE_LOCK build_tree
        PASS_REGULAR_EXPRESSION "${header}: No such file or directory")
endforeach()
add_test(NAME 12_layers_link
         COMMAND ${CMAKE_COMMAND} -S ${CMAKE_SOURCE_DIR} -B ${CMAKE_BINARY_DIR}/layers-selftest
                 -DSB_LAYERS_SELFTEST=ON)
set_tests_properties(12_layers_link PROPERTIES TIMEOUT 120
    PASS_REGULAR_EXPRESSION "sb-broker may not link PkgConfig::CURL")

# The build's own discipline: cppcheck over the product sources, no finding
# left unless suppressed inline with its reason (tests/50_lint_cppcheck.sh).
add_test(NAME 50_lint_cppcheck
         COMMAND ${CMAKE_SOURCE_DIR}/tests/50_lint_cppcheck.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(50_lint_cppcheck PROPERTIES TIMEOUT 300)
