# common — unit tests of logging, configuration and clocks.
sb_add_test(14_common_log_config SOURCES 14_common_log_config.c LIBS sb_common PkgConfig::CMOCKA)

