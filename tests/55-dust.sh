#!/usr/bin/env bash
# dust: dm-remap over dm-dust. dm-dust fails reads of its bad blocks and forgets a bad
# block as soon as a write reaches it (as a drive's own reallocation would), optionally
# after failing that write a given number of times. That makes it a witness: a bad block
# still listed by dm-dust after dm-remap handled a write to it was never written on the
# main device.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
grep -qw dust <(dmsetup targets) || modprobe dm-dust 2>/dev/null || true
grep -qw dust <(dmsetup targets) || skip_all "dm-dust not available"
ktap_plan 16
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
dust_name=${PREFIX}dust
dmsetup create "$dust_name" --table "0 131072 dust $base 0 4096" || fail "create the dm-dust device"
DMDEVS+=("$dust_name")
dust() { dmsetup message "$dust_name" 0 "$@"; }
# listed <block>: 0 if dm-dust lists the block as bad, 1 if it says it does not, 2 if
# the query failed or answered neither (a check that a block is not listed must not
# pass because the query failed).
listed() {
  local out
  out=$(dust queryblock "$1" 2>&1) || { diag "dm-dust queryblock $1 failed: $out"; return 2; }
  case $out in
    *"block $1 found in badblocklist"*) return 0 ;;
    *"block $1 not found in badblocklist"*) return 1 ;;
  esac
  diag "dm-dust queryblock $1 answered: $out"
  return 2
}
not_listed() { listed "$1"; [ $? = 1 ]; }
# Block 10: unreadable. Block 11: unreadable, but a write repairs it on the main device.
# Block 30: the first write fails, the second succeeds. Block 40: writes keep failing.
dust addbadblock 10 && dust addbadblock 11 && dust addbadblock 30 1 && dust addbadblock 40 9 &&
  dust enable || fail "dm-dust bad blocks and enable"
dm_create r "0 131072 remap /dev/mapper/$dust_name $spare" || fail "create the target"
dev=$(dm_path r)

ktap_check "read of a bad block fails with EIO (no invented data)" \
  fails_with "Input/output error" blk_read "$dev" 10 "$WORK/x"
ktap_check "the block is recorded as pending" test "$(info r pending)" = 1
ktap_check "query says pending" bash -c "dmsetup message ${PREFIX}r 0 query 10 | grep -q 'state=pending'"

head -c 4096 /dev/urandom > "$WORK/a"
ktap_check "a write to the pending block succeeds" blk_write "$dev" 10 "$WORK/a"
ktap_check "and reads back" bash -c "dd if='$dev' bs=4096 skip=10 count=1 iflag=direct status=none | cmp -s - '$WORK/a'"
ktap_check "status: pending 0, remapped 1" test "$(info r pending) $(info r remapped)" = "0 1"
ktap_check "dm-dust still lists block 10: the write never touched the main device" listed 10

head -c 4096 /dev/urandom > "$WORK/b"
ktap_check "a write to a bad block that the main device accepts succeeds" blk_write "$dev" 11 "$WORK/b"
went_to_main() { not_listed 11 && test "$(info r remapped)" = 1; }
ktap_check "it went to the main device (dm-dust forgot block 11), no spare used" went_to_main

head -c 4096 /dev/urandom > "$WORK/c"
counter() { dmsetup message "${PREFIX}r" 0 stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ktap_check "a write that fails once succeeds" blk_write "$dev" 30 "$WORK/c"
ktap_check "the retry on the main device took it: no remap, counted as write_retried_ok" \
  test "$(info r remapped) $(counter write_retried_ok) $(info r write_errors)" = "1 1 0"
ktap_check "and it reads back from the main device" \
  bash -c "dd if='$dev' bs=4096 skip=30 count=1 iflag=direct status=none | cmp -s - '$WORK/c'"

head -c 4096 /dev/urandom > "$WORK/d"
ktap_check "a write that keeps failing succeeds" blk_write "$dev" 40 "$WORK/d"
remapped_and_back() {
  blk_read "$dev" 40 "$WORK/d.back" && cmp -s "$WORK/d" "$WORK/d.back" && test "$(info r remapped)" = 2
}
ktap_check "through a remap, and reads back" remapped_and_back

# Remove and create again over the same devices: the remaps and the data are kept, and
# the main device's bad blocks are still untouched.
dmsetup remove "${PREFIX}r" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}r}")
dm_create r "0 131072 remap /dev/mapper/$dust_name $spare" || fail "create the target again"
both_back() {
  blk_read "$dev" 10 "$WORK/a2" && blk_read "$dev" 40 "$WORK/d2" &&
    cmp -s "$WORK/a" "$WORK/a2" && cmp -s "$WORK/d" "$WORK/d2"
}
ktap_check "after remove/create both remapped blocks read back" both_back
both_listed() { listed 10 && listed 40; }
ktap_check "and dm-dust still lists blocks 10 and 40" both_listed
ktap_finish
