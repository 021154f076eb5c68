# Store test group: extra CTest entries for the store's unit tests.
# test_store_converge runs seeds 1..200 with 150 steps per replica as the
# plain unit test (~1-2 min on one core); this adds a second, disjoint range
# of 50 seeds with 400 steps per replica: longer histories, more undo/redo,
# deeper conflict chains (~1-2 min). Replay one seed of it with
# MESHFS_STEPS=400 MESHFS_SEED=N build/tests/test_store_converge.
if(TARGET test_store_converge)
  add_test(NAME store/converge-long
           COMMAND test_store_converge 100001 50 400)
  set_tests_properties(store/converge-long PROPERTIES TIMEOUT 900
                       LABELS "unit;store")
  # and with no trash (MESHFS_TRASH0: retention 0), so that collection
  # drops superseded versions and deleted files' content while replicas
  # diverge and merge, under the same oracle (no silent loss): the runs
  # above keep every version for the trash's 7 days
  add_test(NAME store/converge-trash0
           COMMAND test_store_converge 300001 60 400)
  set_tests_properties(store/converge-trash0 PROPERTIES TIMEOUT 900
                       LABELS "unit;store" ENVIRONMENT MESHFS_TRASH0=1)
endif()

# The daemon runs the store with group commit (commit_window_us, txn.c);
# the unit tests open it without unless MESHFS_COMMIT_WINDOW_US says
# otherwise. These run the store's API, thread and full-disk tests again
# the way the daemon runs the store.
foreach(t test_store_local test_store_threads test_store_enospc)
  if(TARGET ${t})
    string(REGEX REPLACE "^test_store_" "" short ${t})
    add_test(NAME store/${short}-groupcommit COMMAND ${t})
    set_tests_properties(store/${short}-groupcommit PROPERTIES TIMEOUT 600
      LABELS "unit;store" ENVIRONMENT MESHFS_COMMIT_WINDOW_US=2000)
  endif()
endforeach()

# The store's layers call and include only downward, but for the
# exceptions the script lists (docs/ARCHITECTURE.md "Layers"): read from
# the library's symbol tables with nm.
if(TARGET meshfs_store AND CMAKE_NM)
  add_test(NAME store/layers
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/store_layers.sh ${CMAKE_NM}
                   $<TARGET_FILE:meshfs_store> ${CMAKE_SOURCE_DIR}/store)
  set_tests_properties(store/layers PROPERTIES TIMEOUT 60 LABELS "unit;store")
endif()
