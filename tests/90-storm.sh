#!/usr/bin/env bash
# storm: when the main device fails everywhere at once (a dying or vanished disk), the
# target stops remapping after max_remap_rate remaps instead of copying the whole
# disk onto the spare: mode "failed", clear errors, the rest keeps working. The mode is
# recorded in the metadata: a reload does not start remapping again; only the
# `clear_failed` message leaves it.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
load_module || skip_all "dm-remap not loadable"
ktap_plan 15

base=$(mkloop 64) spare=$(mkloop 16)
# 2000 blocks (8 MiB) that fail every I/O.
main=$(mkfaulty faulty "$base" 131072 error:40000:16000)
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20"
dev=$(dm_path s)
ktap_check "table keeps max_remap_rate" bash -c "dmsetup table ${PREFIX}s | grep -Eq ' 4 max_remap_rate 20 uuid [0-9a-f-]{36}\$'"

head -c 4096 /dev/urandom > "$WORK/a"
ok=0 failed_at=
for i in $(seq 0 39); do
  if blk_write "$dev" $((5000 + i)) "$WORK/a" 2>/dev/null; then ok=$((ok + 1)); else failed_at=$i; break; fi
done
diag "writes remapped before the guard tripped: $ok (failed at $failed_at)"
ktap_check "the burst of 20 remaps is allowed" test "$ok" -ge 20
ktap_check "a storm beyond it is not remapped" test -n "$failed_at" -a "$ok" -le 25
ktap_check "mode is failed" test "$(info s mode)" = failed
ktap_check "the kernel log says why" bash -c "dmesg | grep -q 'remap storm'"
ktap_check "writes outside the failed region still work" blk_write "$dev" 100 "$WORK/a"
blk_read "$dev" 5000 "$WORK/back"
ktap_check "remapped blocks still read back" cmp -s "$WORK/a" "$WORK/back"
ktap_check_fails "a new failing write returns an error" blk_write "$dev" 5100 "$WORK/a"
n=$(info s remapped)
dmsetup remove "${PREFIX}s" || exit 1
DMDEVS=("${DMDEVS[@]/${PREFIX}s}")
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20" || exit 1
ktap_check "after remove/create: still mode failed (recorded in the metadata)" test "$(info s mode)" = failed
ktap_check "and the $n remaps are still there" test "$(info s remapped)" = "$n"
ktap_check_fails "a failing write still returns an error (no remaps after reload)" blk_write "$dev" 5101 "$WORK/a"
ev0=$(dmsetup info -c --noheadings -o events "${PREFIX}s")
ktap_check "clear_failed answers mode=ok" bash -c "dmsetup message ${PREFIX}s 0 clear_failed | grep -qx mode=ok"
ktap_check "mode ok, and a dm event was raised" \
  test "$(info s mode)" = ok -a "$(dmsetup info -c --noheadings -o events "${PREFIX}s")" -gt "$ev0"
ktap_check "a failing write is remapped again" blk_write "$dev" 5101 "$WORK/a"
dmsetup remove "${PREFIX}s" || exit 1
DMDEVS=("${DMDEVS[@]/${PREFIX}s}")
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20" || exit 1
ktap_check "after remove/create: mode ok (cleared in the metadata)" test "$(info s mode)" = ok
ktap_finish
