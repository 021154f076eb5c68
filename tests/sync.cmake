# sync/ test groups: the fuzz target (a libFuzzer build with clang when
# MESHFS_FUZZ=ON, else a seeded replay driver), its bounded smoke run, and
# the system tests with real daemons in a network namespace. The simulator
# and unit tests are tests/unit/test_sync_*.c (registered by the glob).
set(MFS_SYNC_FUZZ_SRC ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_sync_datagram.c)
set(MFS_SYNC_CORPUS ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus/sync_datagram)
if(MESHFS_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # the parsers are compiled into the target so they get coverage
  set(S ${CMAKE_CURRENT_LIST_DIR}/../sync)
  add_executable(fuzz_sync_datagram ${MFS_SYNC_FUZZ_SRC} ${S}/mesh.c
    ${S}/wire.c ${S}/replay.c ${S}/rtt.c ${S}/core.c ${S}/noise.c ${S}/hs.c
    ${S}/ident.c ${S}/invite.c)
  meshfs_warnings(fuzz_sync_datagram)
  target_include_directories(fuzz_sync_datagram PRIVATE ${S})
  target_link_libraries(fuzz_sync_datagram PRIVATE meshfs_store
    PkgConfig::SODIUM)
  target_compile_definitions(fuzz_sync_datagram PRIVATE MFS_LIBFUZZER)
  target_compile_options(fuzz_sync_datagram PRIVATE
    -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_sync_datagram PRIVATE
    -fsanitize=fuzzer,address,undefined)
  # a writable copy of the corpus so runs do not touch the source tree
  add_test(NAME fuzz/sync_datagram COMMAND sh -c
    "mkdir -p corpus-sync && cp -n ${MFS_SYNC_CORPUS}/* corpus-sync/ ; $<TARGET_FILE:fuzz_sync_datagram> -max_total_time=60 -timeout=10 -rss_limit_mb=1024 corpus-sync")
else()
  add_executable(fuzz_sync_datagram ${MFS_SYNC_FUZZ_SRC})
  meshfs_warnings(fuzz_sync_datagram)
  target_link_libraries(fuzz_sync_datagram PRIVATE meshfs_sync)
  add_test(NAME fuzz/sync_datagram COMMAND fuzz_sync_datagram
    ${MFS_SYNC_CORPUS}/data_frame ${MFS_SYNC_CORPUS}/hb_frame
    ${MFS_SYNC_CORPUS}/invite ${MFS_SYNC_CORPUS}/invite2
    ${MFS_SYNC_CORPUS}/init_body)
endif()
set_tests_properties(fuzz/sync_datagram PROPERTIES TIMEOUT 120 LABELS "fuzz;sync")

add_test(NAME system/sync_net COMMAND
  ${CMAKE_CURRENT_LIST_DIR}/system/sync_net.sh $<TARGET_FILE:meshfs-synctool> 300)
add_test(NAME system/sync_flood COMMAND
  ${CMAKE_CURRENT_LIST_DIR}/system/sync_flood.sh $<TARGET_FILE:meshfs-synctool> 100000)
add_test(NAME system/sync_hsflood COMMAND
  ${CMAKE_CURRENT_LIST_DIR}/system/sync_hsflood.sh $<TARGET_FILE:meshfs-synctool> 100000)
set_tests_properties(system/sync_net system/sync_flood system/sync_hsflood PROPERTIES
  TIMEOUT 300 LABELS "system;sync" SKIP_RETURN_CODE 77)
