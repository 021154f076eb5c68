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
  persist=600 bigdir=900 sparse=900 crash=900 collect=400 writebehind=300
  acks_cli=300)

meshfs_script_tests(fs 600 system "${MESHFS_FS_TEST_TIMEOUTS}")
