#!/usr/bin/env bash
# spare-sharing: one target owns a spare. A table naming a spare that another live
# dm-remap target holds (as spare or as main), or naming as main device another target's
# spare, is refused at load with the reason in the kernel log, and nothing is written to
# any device; a reload of the owning device itself still works.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cksum
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 11
sums() { for d in "$@"; do dd if="$d" bs=1M iflag=direct status=none | cksum; done; }
why="already held by another dm-remap target"
refused() { dmesg_since_mark | grep -q "device-mapper: table: .*: remap: A device of this table is $why"; }

base=$(mkloop 16) || fail "loop device for the main device"
base2=$(mkloop 16) || fail "loop device for a second main device of the same size"
spare=$(mkloop 8) || fail "loop device for the spare"
spare2=$(mkloop 8) || fail "loop device for a second spare"
dm_create a "0 32768 remap $base $spare" || fail "create the first table"
dmsetup message "${PREFIX}a" 0 remap 5 >/dev/null || fail "remap a block in the first table"
before=$(sums "$spare" "$base2" "$spare2")
dmesg_mark
ktap_check_fails "a second table naming the same spare (another main device) is refused" \
  dm_create b "0 32768 remap $base2 $spare"
ktap_check "the kernel log gives the reason" refused
dmesg_mark
ktap_check_fails "a second table over the same main device and spare is refused" \
  dm_create c "0 32768 remap $base $spare"
ktap_check "the kernel log gives the reason" refused
dmesg_mark
ktap_check_fails "a table naming the first table's main device as its spare is refused" \
  dm_create d "0 16384 remap $spare2 $base"
ktap_check "the kernel log gives the reason" refused
dmesg_mark
ktap_check_fails "a table naming the first table's spare as its main device is refused" \
  dm_create e "0 16384 remap $spare $spare2"
ktap_check "the kernel log gives the reason" refused
ktap_check "nothing was written to the spare or the other devices" \
  test "$before" = "$(sums "$spare" "$base2" "$spare2")"
# A reload of the owning device names the same devices: both tables hold them until
# the old one goes.
n=${PREFIX}a
ktap_check "a reload of the owning device with the same spare works" \
  bash -c "dmsetup reload $n --table '0 32768 remap $base $spare' && dmsetup suspend $n && dmsetup resume $n"
ktap_check "and keeps the remap" \
  bash -c "dmsetup message $n 0 query 5 | grep -q state=remapped"
ktap_finish
