#!/usr/bin/env bash
# identity: a spare is bound to its main device by the device's own identifier (the
# WWN of a SCSI disk: an NAA designator read through get_unique_id) and by the setup
# UUID that the table prints. Two same-size setups whose disks swap names (as at a
# boot that finds them in another order) are refused with a clear reason, and nothing
# is written to either spare. Needs the identity disks of scripts/test-disks.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup sha256sum
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
disk_by_wwn() {
  local d
  for d in /sys/block/sd*; do
    [ "$(cat "$d/device/wwid" 2>/dev/null)" = "naa.$1" ] && { echo "/dev/${d##*/}"; return 0; }
  done
  return 1
}
a=$(disk_by_wwn 5000c50015ea71a1) && b=$(disk_by_wwn 5000c50015ea71b2) ||
  skip_all "identity disks not attached (VM_QEMU_OPTS=\$(scripts/test-disks))"
ktap_plan 9

sz=$(blockdev --getsz "$a")
spa=$(mkloop 16) || exit 1
spb=$(mkloop 16) || exit 1
dm_create a "0 $sz remap $a $spa" || exit 1
dm_create b "0 $sz remap $b $spb" || exit 1
dmsetup message "${PREFIX}a" 0 remap 5 >/dev/null && dmsetup message "${PREFIX}b" 0 remap 9 >/dev/null || exit 1
ta=$(dmsetup table "${PREFIX}a") tb=$(dmsetup table "${PREFIX}b")
diag "table a: $ta"
uuid_a=$(sed -n 's/.* uuid \([0-9a-f-]*\).*/\1/p' <<<"$ta")
ktap_check "the table prints the setup uuid" test -n "$uuid_a"
dmsetup remove "${PREFIX}a" && dmsetup remove "${PREFIX}b" || exit 1
DMDEVS=()
ktap_check "remapctl records the disk's WWN as the main device identity" \
  bash -c "'$REMAPCTL' meta dump '$spa' | grep -q 'naa:5000c50015ea71a1'"

sums() { sha256sum "$spa" "$spb" | awk '{ print $1 }' | tr '\n' ' '; }
before=$(sums)
dmesg_mark
ktap_check_fails "spare of disk a with disk b (names swapped) is refused" \
  dmsetup create "${PREFIX}x" --table "0 $sz remap $b $spa"
ktap_check "the kernel log says the identity differs and names both" \
  bash -c "dmesg_since_mark | grep -q 'made on main device naa:5000c50015ea71a1; this one is naa:5000c50015ea71b2'"
ktap_check_fails "spare of disk b with disk a is refused" \
  dmsetup create "${PREFIX}x" --table "0 $sz remap $a $spb"
# A printed table line names its setup: with another setup's spare it is refused even
# where sizes and identities would not tell (here: a's line with b's spare and disk).
line_b_with_a_uuid=$(sed "s#^0 $sz remap [^ ]* [^ ]*#0 $sz remap $b $spb#" <<<"$ta" | cut -d' ' -f4-)
dmesg_mark
ktap_check_fails "a's table line over b's devices is refused (setup uuid)" \
  dmsetup create "${PREFIX}x" --table "0 $sz remap $line_b_with_a_uuid"
ktap_check "the kernel log says the setup differs" \
  bash -c "dmesg_since_mark | grep -q 'Spare belongs to another setup'"
ktap_check "nothing was written to either spare" test "$before" = "$(sums)"
dm_create a "0 $sz remap $(cut -d' ' -f4- <<<"$ta")" || exit 1
ktap_check "the right pairing loads, block 5 still remapped" \
  bash -c "dmsetup message ${PREFIX}a 0 query 5 | grep -q state=remapped"
ktap_finish
