# common — unit tests of logging, configuration and clocks.
sb_add_test(14_common_log_config SOURCES 14_common_log_config.c LIBS sb_common PkgConfig::CMOCKA)

# docs/CONFIGURATION.md is generated from the binaries' option tables; this
# fails when an option changed and the docs were not regenerated.
add_test(NAME 14_config_docs_current
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/config-docs --check ${CMAKE_BINARY_DIR})
set_tests_properties(14_config_docs_current PROPERTIES TIMEOUT 30)

# The JSON scanner the gateway splices worker results with (against jansson too).
sb_add_test(17_json_scan_unit SOURCES 17_json_scan_unit.c LIBS sb_json PkgConfig::JANSSON PkgConfig::CMOCKA)
sb_add_fuzz(fuzz_json_scan SOURCE fuzz/fuzz_json_scan.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/json_scan
            LIBS sb_json PkgConfig::JANSSON)

# The call path's JSON reader and writer, against jansson's.
sb_add_test(17_json_parse_unit SOURCES 17_json_parse_unit.c LIBS sb_json PkgConfig::CMOCKA)
sb_add_test(17_json_dump_unit SOURCES 17_json_dump_unit.c LIBS sb_json PkgConfig::CMOCKA)
sb_add_fuzz(fuzz_json_parse SOURCE fuzz/fuzz_json_parse.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/json_parse
            LIBS sb_json)
