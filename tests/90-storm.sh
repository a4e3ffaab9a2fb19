#!/usr/bin/env bash
# storm: when the main device fails everywhere at once (a dying or vanished disk), the
# target stops remapping after max_remap_rate remaps instead of copying the whole
# disk onto the spare: mode "failed", clear errors, the rest keeps working. The mode is
# recorded in the metadata: a reload does not start remapping again; only the
# `clear_failed` message leaves it.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
ktap_plan 16
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
# 2000 blocks (8 MiB) that fail every I/O.
main=$(mkfaulty faulty "$base" 131072 error:40000:16000) || fail "faulty main device"
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20" || fail "create the target"
dev=$(dm_path s)
ktap_check "table keeps max_remap_rate (then the setup uuid)" \
  bash -c "dmsetup table ${PREFIX}s | grep -qE ' 4 max_remap_rate 20 uuid [0-9a-f-]{36}\$'"

head -c 4096 /dev/urandom > "$WORK/a" || fail "random data"
# Writes to consecutive bad blocks until one fails; the failure must be the storm
# guard's EIO, not some other error.
ok=0 failed_at= err=
dmesg_mark
t0=$(date +%s%N)
for i in $(seq 0 39); do
  if err=$(blk_write "$dev" $((5000 + i)) "$WORK/a" 2>&1); then ok=$((ok + 1)); else failed_at=$i; break; fi
done
# The bucket refills at 20 a minute: over the loop's time at most the burst of 20
# plus what refilled (a debug kernel under emulation writes slowly enough to earn some).
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
most=$((20 + (ms * 20 + 59999) / 60000))
diag "writes remapped before the guard tripped: $ok in $ms ms, at most $most (failed at $failed_at: $err)"
ktap_check "the burst of 20 remaps is allowed" test "$ok" -ge 20
ktap_check "a storm beyond it is not remapped" test -n "$failed_at" -a "$ok" -le "$most"
ktap_check "the refused write failed with EIO" grep -qF "Input/output error" <<<"$err"
ktap_check "mode is failed" test "$(info s mode)" = failed
storm_logged() { dmesg_since_mark | grep -q 'remap storm'; }
ktap_check "the kernel log says why" storm_logged
ktap_check "writes outside the failed region still work" blk_write "$dev" 100 "$WORK/a"
ktap_check "remapped blocks still read back" \
  bash -c "dd if='$dev' bs=4096 skip=5000 count=1 iflag=direct status=none | cmp -s - '$WORK/a'"
ktap_check "a new failing write returns EIO" fails_with "Input/output error" blk_write "$dev" 5100 "$WORK/a"
n=$(info s remapped)
dmsetup remove "${PREFIX}s" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}s}")
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20" || fail "create the target again"
ktap_check "after remove/create: still mode failed (recorded in the metadata)" test "$(info s mode)" = failed
ktap_check "and the $n remaps are still there" test "$(info s remapped)" = "$n"
ktap_check "a failing write still returns EIO (no remaps after reload)" \
  fails_with "Input/output error" blk_write "$dev" 5101 "$WORK/a"
ev0=$(dmsetup info -c --noheadings -o events "${PREFIX}s") || fail "event counter of the target"
ktap_check "clear_failed answers mode=ok" bash -c "dmsetup message ${PREFIX}s 0 clear_failed | grep -qx mode=ok"
ktap_check "mode ok, and a dm event was raised" \
  test "$(info s mode)" = ok -a "$(dmsetup info -c --noheadings -o events "${PREFIX}s")" -gt "$ev0"
ktap_check "a failing write is remapped again" blk_write "$dev" 5101 "$WORK/a"
dmsetup remove "${PREFIX}s" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}s}")
dm_create s "0 131072 remap $main $spare 2 max_remap_rate 20" || fail "create the target again"
ktap_check "after remove/create: mode ok (cleared in the metadata)" test "$(info s mode)" = ok
ktap_finish
