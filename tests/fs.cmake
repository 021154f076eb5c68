# System tests of the FUSE filesystem (issue 3): one CTest entry per
# tests/system/fs_*.sh script, run with bash on real mounts. They need root
# and /dev/fuse; without /dev/fuse they exit 77 (skipped). The meshfs binary
# reaches them through $MESHFS. Each script keeps its own watchdog a little
# shorter than the CTest timeout, so it can still unmount and clean up.
#
# Budget (2 cores, ctest -j2): the whole group is meant to finish in about
# ten minutes; the timeouts below are ceilings, not expectations.
set(MESHFS_FS_TEST_TIMEOUTS
  cli=300 tools=600 posix=600 git=600 sqlite=600 perms=300
  persist=600 bigdir=900 sparse=900 crash=900 collect=400)

file(GLOB MESHFS_FS_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/system/fs_*.sh)
foreach(script ${MESHFS_FS_TESTS})
  get_filename_component(name ${script} NAME_WE) # fs_xxx
  string(REGEX REPLACE "^fs_" "" short ${name})
  set(timeout 600)
  foreach(entry ${MESHFS_FS_TEST_TIMEOUTS})
    if(entry MATCHES "^${short}=([0-9]+)$")
      set(timeout ${CMAKE_MATCH_1})
    endif()
  endforeach()
  math(EXPR ctest_timeout "${timeout} + 60")
  add_test(NAME system/${name} COMMAND bash ${script})
  set_tests_properties(system/${name} PROPERTIES
    TIMEOUT ${ctest_timeout} LABELS system SKIP_RETURN_CODE 77)
  if(TARGET meshfs)
    set_property(TEST system/${name} APPEND PROPERTY
      ENVIRONMENT MESHFS=$<TARGET_FILE:meshfs>)
  endif()
endforeach()
