#!/usr/bin/env bash
# memory-pressure: a failing write completes through a remap even when every slab
# allocation made on dm-remap's behalf fails. failslab, limited by its stacktrace filter
# to allocations whose call stack runs through the dm_remap module, fails them all while
# writes to bad blocks are remapped; dm-remap's worker allocates nothing (it works in
# storage reserved at table load) and dm-io falls back to its mempool.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
fs=/sys/kernel/debug/failslab
[ -d /sys/kernel/debug/failslab ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -w "$fs/require-start" ] || skip_all "kernel without failslab and its stacktrace filter"
ktap_plan 4

base=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
specs=()
for i in $(seq 0 15); do specs+=("error:$(( (2000 + i * 11) * 8 )):8"); done
main=$(mkfaulty mp "$base" 131072 "${specs[@]}") || exit 1
dm_create m "0 131072 remap $main $spare" || exit 1
dev=$(dm_path m)
for i in $(seq 0 15); do head -c 4096 /dev/urandom > "$WORK/d$i"; done

start=$(cat /sys/module/dm_remap/sections/.text)
size=$(cat /sys/module/dm_remap/coresize)
faults_off() { echo 0 > "$fs/probability"; echo 0 > "$fs/require-start"; echo 0 > "$fs/require-end"; }
trap 'rc=$?; faults_off; (exit $rc); teardown' EXIT
end=$(printf '0x%x' $((start + size)))
echo "$start" > "$fs/require-start" && echo "$end" > "$fs/require-end" &&
  echo N > "$fs/ignore-gfp-wait" && echo 1 > "$fs/interval" && echo 0 > "$fs/verbose" &&
  echo 1000000 > "$fs/times" && echo 100 > "$fs/probability" || exit 1
fails=0
for i in $(seq 0 15); do
  blk_write "$dev" $((2000 + i * 11)) "$WORK/d$i" || fails=$((fails + 1))
done
left=$(cat "$fs/times")
faults_off
diag "allocations failed by failslab during the writes: $((1000000 - left))"
ktap_check "failslab did fail allocations made on dm-remap's behalf" test "$left" -lt 1000000
ktap_check "all 16 failing writes succeeded through remaps" test "$fails" = 0
bad=0
for i in $(seq 0 15); do
  blk_read "$dev" $((2000 + i * 11)) "$WORK/r$i" && cmp -s "$WORK/d$i" "$WORK/r$i" || bad=$((bad + 1))
done
ktap_check "and read back" test "$bad" = 0
ktap_check "16 blocks remapped, mode ok" test "$(info m remapped) $(info m mode)" = "16 ok"
ktap_finish
