# tests/connector.cmake — connector definitions, input schemas, templates,
# result mapping (connector/sb_connector.c, sb_schema.c, sb_template.c,
# sb_mapping.c) and the template fuzz target, whose seed corpus every ctest
# run replays.
set(SB_CONNECTOR_TEST_LIBS sb_connector PkgConfig::CMOCKA PkgConfig::JANSSON)

sb_add_test(15_connector_load     SOURCES 15_connector_load.c     LIBS ${SB_CONNECTOR_TEST_LIBS})
sb_add_test(15_connector_template SOURCES 15_connector_template.c LIBS ${SB_CONNECTOR_TEST_LIBS})
sb_add_test(15_connector_mapping  SOURCES 15_connector_mapping.c  LIBS ${SB_CONNECTOR_TEST_LIBS})
sb_add_test(15_connector_catalog  SOURCES 15_connector_catalog.c  LIBS ${SB_CONNECTOR_TEST_LIBS})
sb_add_test(16_schema_unit SOURCES 16_schema_unit.c LIBS ${SB_CONNECTOR_TEST_LIBS})

# Fuzz target for connector templates; every ctest run replays its corpus.
sb_add_fuzz(fuzz_template SOURCE fuzz/fuzz_template.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/template
            LIBS sb_connector)

# The official JSON-Schema-Test-Suite (draft2020-12, tests/data/JSON-Schema-Test-Suite),
# with the keywords refused at load and the known failures in tests/data/schema_suite.json.
sb_add_test(16_schema_suite SOURCES 16_schema_suite.c LIBS sb_schema PkgConfig::CMOCKA PkgConfig::JANSSON)
