#!/usr/bin/env bash
# log-replay: a copy whose log records pass their own checksums but do not replay to
# the state the last one records (remap-forge --log-mismatch: copy 0's record names
# another spare block than copies 1-4's) does not stop the load: the kernel builds the
# state from the next current copy, says so, and the first resume rewrites copy 0.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup
FORGE=${FORGE:-$(cd "$(dirname "$0")/.." && pwd)/rust/target/debug/remap-forge}
[ -x "$FORGE" ] && [ -x "$REMAPCTL" ] || skip_all "remap-forge/remapctl not built (cargo build)"
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 8
img=$WORK/spare.img
out=$("$FORGE" valid "$img" 131072 32768 --log-mismatch) || fail "remap-forge --log-mismatch"
diag "$out"
# "appended version 6 (block B on spare block S); copy 0's record names spare block S-1"
read -r blk sblk < <(sed -n 's/.*(block \([0-9]*\) on spare block \([0-9]*\)).*/\1 \2/p' <<<"$out")
[ -n "$sblk" ] || fail "remap-forge names the block"
ktap_check "remapctl: needs repair (copy 0's log), not refused" \
  bash -c "'$REMAPCTL' meta check '$img' | grep -q 'copy 0 (sector 0): log does not replay'"
spare=$(losetup -f --show "$img") && echo "$spare" >> "$LOOPS_FILE" || fail "loop device for the spare"
main=$(mkloop 64) || fail "loop device for the main device"
dmesg_mark
ktap_check "the table loads" dm_create lr "0 131072 remap $main $spare"
ktap_check "the kernel log says copy 0's log did not replay" \
  logged "metadata log of copy 0: Spare metadata log does not replay to the state it records; trying another current copy"
ktap_check "block $blk is on spare block $sblk (copies 1-4's record), not $((sblk - 1))" \
  bash -c "dmsetup message ${PREFIX}lr 0 query $blk | grep -q 'state=remapped spare=0 spare_block=$sblk '"
ktap_check "mode ok" test "$(info lr mode)" = ok
ktap_check "a commit after the load (remap 100) succeeds" \
  bash -c "dmsetup message ${PREFIX}lr 0 remap 100 | grep -q 'block=100 remapped'"
dmsetup remove "${PREFIX}lr" || fail "remove"
DMDEVS=()
ktap_check "copy 0 was rewritten: the spare's metadata is clean" \
  bash -c "'$REMAPCTL' meta check '$spare' | grep -q ': clean'"
ktap_check "a reload loads the same map" \
  bash -c "dmsetup create ${PREFIX}lr --table '0 131072 remap $main $spare' &&
    dmsetup message ${PREFIX}lr 0 query 100 | grep -q state=remapped &&
    dmsetup message ${PREFIX}lr 0 query $blk | grep -q 'spare_block=$sblk '"
DMDEVS=(lr)
ktap_finish
