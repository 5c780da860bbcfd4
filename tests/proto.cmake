# proto — codec unit tests and the fuzz corpus replay.
sb_add_test(10_proto_msg SOURCES 10_proto_msg.c LIBS sb_proto PkgConfig::CMOCKA)
sb_add_test(10_proto_quota SOURCES 10_proto_quota.c LIBS sb_proto PkgConfig::CMOCKA)
sb_add_test(11_proto_job SOURCES 11_proto_job.c LIBS sb_proto sb_common PkgConfig::CMOCKA)
sb_add_fuzz(fuzz_proto_msg SOURCE fuzz/fuzz_proto_msg.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/proto_msg
            LIBS sb_proto)
sb_add_test(11_proto_payload SOURCES 11_proto_payload.c LIBS sb_payload PkgConfig::CMOCKA)
sb_add_test(11_proto_http_payload SOURCES 11_proto_http_payload.c LIBS sb_payload PkgConfig::CMOCKA)
sb_add_fuzz(fuzz_payload SOURCE fuzz/fuzz_payload.c CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/payload
            LIBS sb_payload)
