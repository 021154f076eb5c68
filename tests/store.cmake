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
endif()
