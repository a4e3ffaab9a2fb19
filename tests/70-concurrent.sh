#!/usr/bin/env bash
# concurrent: many writers hitting different bad blocks at once all succeed, and their
# remaps share metadata commits (group commit).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
ktap_plan 4
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
sbase=$(mkloop 16) || fail "loop device for the spare"
specs=()
for i in $(seq 0 31); do specs+=("error:$(( (1000 + i * 37) * 8 )):8"); done
main=$(mkfaulty cm "$base" 131072 "${specs[@]}") || fail "faulty main device"
# A slow spare (50 ms per write) makes commits long enough for writers to pile up.
echo "0 32768 delay $sbase 0 0 $sbase 0 50" | dmsetup create "${PREFIX}slow" || fail "slow spare (dm-delay)"
DMDEVS+=("${PREFIX}slow")
dm_create c "0 131072 remap $main /dev/mapper/${PREFIX}slow" || fail "create the target"
dev=$(dm_path c)
v0=$(info c meta_version) || fail "meta_version in the status"
for i in $(seq 0 31); do head -c 4096 /dev/urandom > "$WORK/d$i" || fail "random data"; done
# Every writer waits at a barrier, so that all 32 writes start together however slowly
# the shells were started (under TCG on a busy host, ~100 ms each).
for i in $(seq 0 31); do
  (while [ ! -e "$WORK/go" ]; do sleep 0.05; done; blk_write "$dev" $((1000 + i * 37)) "$WORK/d$i") &
done
sleep 1
touch "$WORK/go"
fails=0
for j in $(jobs -p); do wait "$j" || fails=$((fails + 1)); done
ktap_check "32 concurrent writes to bad blocks all succeed" test "$fails" = 0
bad=0
for i in $(seq 0 31); do
  blk_read "$dev" $((1000 + i * 37)) "$WORK/r$i"
  cmp -s "$WORK/d$i" "$WORK/r$i" || bad=$((bad + 1))
done
ktap_check "all 32 read back" test "$bad" = 0
ktap_check "32 blocks remapped" test "$(info c remapped)" = 32
commits=$(( $(info c meta_version) - v0 ))
diag "32 remaps took $commits metadata commits"
ktap_check "remaps shared commits (fewer commits than remaps)" test "$commits" -lt 32
ktap_finish
