# tests/broker.cmake — the broker's tests. All start the broker in-process
# (sb_broker_actor on tcp://127.0.0.1:*) and drive it with raw DEALER
# sockets and the proto codec; the first two are unit tests of its data
# structures and its quota table (20_broker_broadcast also tests the
# gateway table on its own).
add_library(sb_broker_testsupport STATIC ${CMAKE_CURRENT_SOURCE_DIR}/20_broker_support.c)
target_link_libraries(sb_broker_testsupport PUBLIC sb_broker_lib)
target_include_directories(sb_broker_testsupport PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

sb_add_test(20_broker_queue SOURCES 20_broker_queue.c
            LIBS sb_broker_lib PkgConfig::CMOCKA TIMEOUT 30)
sb_add_test(20_broker_quota SOURCES 20_broker_quota.c
            LIBS sb_broker_lib PkgConfig::CMOCKA TIMEOUT 60)
foreach(t routing faults malformed calls broadcast unavailable worker_request quotas)
    sb_add_test(20_broker_${t} SOURCES 20_broker_${t}.c
                LIBS sb_broker_testsupport PkgConfig::CMOCKA TIMEOUT 60)
endforeach()
# PUBLISH (PROTOCOL.md "Webhooks"): a worker's news to every gateway.
sb_add_test(20_broker_publish SOURCES 20_broker_publish.c
            LIBS sb_broker_testsupport PkgConfig::CMOCKA TIMEOUT 60)
