#!/usr/bin/env bash
# fs_sqlite: sqlite3 on the mount, 10,000 rows in transactions (rollback
# journal with synchronous=FULL, and WAL, which maps its -shm file), updates,
# a rolled-back transaction, an index, VACUUM; integrity_check and the exact
# row counts and sums, also after umount + mount.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init fs_sqlite 600

mfs_up
mkdir "$M/db"

# fill DB MODE: 100 transactions of 100 rows each
fill() {
    local db=$1 mode=$2 i
    {
        echo "PRAGMA journal_mode=$mode;"
        echo "PRAGMA synchronous=FULL;"
        echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT, b BLOB);"
        for i in $(seq 0 99); do
            echo "BEGIN;"
            echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)
                  INSERT INTO t(k, v, b) SELECT $i * 100 + x, printf('row-%06d', $i * 100 + x),
                  zeroblob(200 + x) FROM c;"
            echo "COMMIT;"
        done
        echo "BEGIN; UPDATE t SET v = v || '-u' WHERE k % 7 = 0; COMMIT;"
        echo "BEGIN; DELETE FROM t WHERE k <= 5000; UPDATE t SET k = -1; ROLLBACK;"
        echo "CREATE INDEX t_v ON t(v);"
    } | sqlite3 -bail "$db" >/dev/null || fail "sqlite3 ($mode) failed on $db"
}

check_db() {
    local db=$1 what=$2
    check_eq "$what integrity_check" "ok" "$(sqlite3 "$db" 'PRAGMA integrity_check;')"
    check_eq "$what rows" "10000" "$(sqlite3 "$db" 'SELECT count(*) FROM t;')"
    check_eq "$what sum(k)" "50005000" "$(sqlite3 "$db" 'SELECT sum(k) FROM t;')"
    check_eq "$what blob bytes" "$((10000 * 200 + 100 * 5050))" "$(sqlite3 "$db" 'SELECT sum(length(b)) FROM t;')"
    check_eq "$what updated rows" "1428" "$(sqlite3 "$db" "SELECT count(*) FROM t WHERE v LIKE '%-u';")"
    check_eq "$what index lookup" "row-004243" "$(sqlite3 "$db" "SELECT v FROM t WHERE v = 'row-004243';")"
}

log "rollback journal, synchronous=FULL"
fill "$M/db/journal.db" delete
check_db "$M/db/journal.db" "journal db"
log "WAL"
fill "$M/db/wal.db" wal
check_db "$M/db/wal.db" "wal db"
sqlite3 "$M/db/wal.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
log "VACUUM rewrites the file"
sqlite3 "$M/db/journal.db" 'VACUUM;'
check_db "$M/db/journal.db" "journal db after VACUUM"

log "a copy on the native fs is the same database"
cp "$M/db/journal.db" "$T/copy.db"
check_db "$T/copy.db" "native copy"
check_eq "dump equal" "$(sqlite3 "$T/copy.db" .dump | sha256sum)" "$(sqlite3 "$M/db/journal.db" .dump | sha256sum)"

log "after umount + mount"
mfs_umount "$M"
mfs_mount "$STORE" "$M"
check_db "$M/db/journal.db" "journal db after remount"
check_db "$M/db/wal.db" "wal db after remount"
mfs_umount "$M"
