#!/usr/bin/env bash
# extents: a scratch of 5,000 neighbouring bad blocks, remapped by the writes that
# failed on it, lands on neighbouring spare blocks and is one run in the metadata; a
# 1 MiB read or write over it reaches the target's `map` as often as one over clean
# blocks (it is sent to the spare whole, not cut at every block); one that crosses the
# end of the run is cut once, there; the data reads back.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3
ktap_plan 8
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 4096..9095 (sectors 32768..72767) fail writes; reads pass.
base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 32) || fail "loop device for the spare"
main=$(mkfaulty faulty "$base" 131072 wfail:32768:40000) || fail "faulty main device"
table="0 131072 remap $main $spare 2 max_remap_rate 0"
dm_create x "$table" || fail "create the target (no remap-storm bound)"
dev=$(dm_path x)

# 20 MiB from block 4096: 5,000 failing blocks and 120 good ones after them.
head -c $((20 << 20)) /dev/urandom > "$WORK/data" || fail "random data"
ktap_check "20 MiB written over 5,000 write-failing blocks" \
  dd if="$WORK/data" of="$dev" bs=1M seek=16 oflag=direct conv=notrunc status=none
ktap_check "5,000 blocks remapped, mode ok" \
  test "$(info x remapped) $(info x mode)" = "5000 ok"
dd if="$dev" of="$WORK/back" bs=1M skip=16 count=20 iflag=direct status=none
ktap_check "the 20 MiB read back the same" cmp -s "$WORK/data" "$WORK/back"

# Bios that reach `map` (the `reads`/`writes` counters count every part dm core sends
# the target) for one 1 MiB direct I/O at byte offset $2 MiB; $1 is read or write.
parts() {
  local kind=$1 mib=$2 before after
  before=$(counter x "${kind}s")
  if [ "$kind" = read ]; then
    dd if="$dev" of=/dev/null bs=1M skip="$mib" count=1 iflag=direct status=none
  else
    dd if="$WORK/mib" of="$dev" bs=1M seek="$mib" count=1 oflag=direct conv=notrunc \
      status=none
  fi || return 1
  after=$(counter x "${kind}s")
  echo $((after - before))
}
head -c $((1 << 20)) /dev/urandom > "$WORK/mib" || fail "random data"
clean_r=$(parts read 40) && clean_w=$(parts write 40) || fail "1 MiB I/O at 40 MiB"
# Blocks 4352..4607 (17 MiB): inside the run (4096..9095).
run_r=$(parts read 17) && run_w=$(parts write 17) || fail "1 MiB I/O at 17 MiB"
diag "parts of a 1 MiB bio: clean read $clean_r, write $clean_w; over the run read $run_r, write $run_w"
ktap_check "a 1 MiB read over the run reaches map as often as over clean blocks" \
  test "$run_r" = "$clean_r"
ktap_check "a 1 MiB write over the run reaches map as often as over clean blocks" \
  test "$run_w" = "$clean_w"
# Blocks 9088..9343: the run's last 8 blocks, then main.
before=$(counter x reads)
dd if="$dev" of="$WORK/cross" bs=1M skip=$((9088 * 4096)) count=1 iflag=direct,skip_bytes \
  status=none ||
  fail "read across the end of the run"
after=$(counter x reads)
diag "parts of a 1 MiB read crossing the end of the run: $((after - before))"
ktap_check "a 1 MiB read across the end of the run is cut once more, there" \
  test $((after - before)) = $((clean_r + 1))
# The data file covers blocks 4096..9215; main's own blocks follow.
dd if="$WORK/data" of="$WORK/cross.want" bs=4096 skip=$((9088 - 4096)) count=128 status=none
dd if="$base" of="$WORK/cross.want" bs=4096 skip=9216 seek=128 count=128 \
  iflag=direct conv=notrunc status=none
ktap_check "and reads the run's end from the spare, the rest from main" \
  cmp -s "$WORK/cross" "$WORK/cross.want"

dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
runs=$("$REMAPCTL" meta dump "$spare" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["counts"]["remapped"], d["counts"]["runs"], d["counts"]["singles"])')
diag "metadata: remapped runs singles = $runs"
ktap_check "the metadata holds the 5,000 blocks as one run" test "$runs" = "5000 1 0"
ktap_finish
