# Power-cut test of the store (promise P2: a power cut loses nothing fsync()
# acknowledged and the store always reopens cleanly). How it works is in
# tests/powercut/pc_check.c (top comment) and docs/ARCHITECTURE.md
# ("Power-cut test"). Three programs:
#   pc_preload.so  LD_PRELOAD shim: logs every write/sync of the store's
#                  data.mdb and intent.log
#   pc_workload    drives a new store (seeded) and notes ops and fsync ACKs
#   pc_check       rebuilds crash images at random cuts of the log and
#                  checks each: reopen, LMDB walk, dump == dump after view
#                  rebuild, every ACK still holds, the store takes writes
# tests/powercut/powercut.sh runs them for both commit settings (0 and
# 2000 us) and both crash modes (drop, torn).
#
#   store/powercut       100 cuts in all (25 per mode and commit setting,
#                        300 ops), 10-25 s
#   store/powercut_long  about 4000 cuts over 4 seeds of 1000 ops, ~10 min;
#                        label and configuration `long`:
#                            ctest -C long -L long -R powercut
# A failing cut prints a replay command; PC_KEEP=DIR keeps the run's log.
add_library(pc_preload MODULE ${CMAKE_CURRENT_SOURCE_DIR}/powercut/pc_preload.c)
meshfs_warnings(pc_preload)
target_link_libraries(pc_preload PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
set_target_properties(pc_preload PROPERTIES PREFIX "")

foreach(prog pc_workload pc_check)
  add_executable(${prog} ${CMAKE_CURRENT_SOURCE_DIR}/powercut/${prog}.c
    ${CMAKE_CURRENT_SOURCE_DIR}/powercut/pc_common.c)
  meshfs_warnings(${prog})
  target_link_libraries(${prog} PRIVATE meshfs_store ${CMAKE_DL_LIBS})
endforeach()
target_link_libraries(pc_check PRIVATE PkgConfig::LMDB)

set(MESHFS_PC_ENV
  PC_PRELOAD=$<TARGET_FILE:pc_preload>
  PC_WORKLOAD=$<TARGET_FILE:pc_workload>
  PC_CHECK=$<TARGET_FILE:pc_check>)

add_test(NAME store/powercut
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/powercut/powercut.sh
    --seeds 1 --cuts 25 --ops 300)
set_tests_properties(store/powercut PROPERTIES
  TIMEOUT 240 LABELS "store;powercut" SKIP_RETURN_CODE 77
  ENVIRONMENT "${MESHFS_PC_ENV}")

add_test(NAME store/powercut_long CONFIGURATIONS long
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/powercut/powercut.sh
    --seeds 4 --cuts 250 --ops 1000)
set_tests_properties(store/powercut_long PROPERTIES
  TIMEOUT 3600 LABELS "store;powercut;long" SKIP_RETURN_CODE 77
  ENVIRONMENT "${MESHFS_PC_ENV}")
