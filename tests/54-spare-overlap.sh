#!/usr/bin/env bash
# spare-overlap: a spare may not share sectors with the main device. Overlapping
# partitions of one disk (which the block layer already refuses to open together), and
# a device stacked on the main device (here dm-linear, at any depth), are refused at
# load with the reason in the kernel log, and nothing is written; partitions of one disk that do not meet are accepted. A stacked device counts
# as using all of the device under it (the block layer does not say which part), so two
# dm-linear devices over different halves of one disk are refused too.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cksum python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 14
sums() { for d in "$@"; do dd if="$d" bs=1M iflag=direct status=none | cksum; done; }
why="The spare shares sectors with the main device"
# The block layer itself refuses to open a whole disk and one of its partitions for one
# table (EBUSY at lookup); either refusal will do there.
refused() { dmesg_since_mark | grep -Eq "device-mapper: table: .*: remap: ($why|Spare device lookup failed \(-16\))"; }
refused_load() { # <name> <table>
  dmesg_mark
  ktap_check_fails "$1 is refused" dm_create "$2" "$3"
  ktap_check "the kernel log gives the reason ($1)" refused ||
    dmesg_since_mark | grep "device-mapper" | sed 's/^/# /'
}

# A 16 MiB disk with an MBR: p1 at sectors 2048..16383, p2 at 16384..32767.
img=$(mktemp "$WORK/img.XXXXXX") && truncate -s 16M "$img" || fail "disk image"
python3 - "$img" <<'PY' || fail "partition table"
import struct, sys
def entry(start, count):
    return struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", start, count)
mbr = bytearray(512)
mbr[446:446 + 32] = entry(2048, 14336) + entry(16384, 16384)
mbr[510:512] = b"\x55\xaa"
with open(sys.argv[1], "r+b") as f:
    f.write(mbr)
PY
disk=$(losetup -P -f --show "$img") && echo "$disk" >> "$LOOPS_FILE" || fail "partitioned loop"
for i in $(seq 50); do [ -b "${disk}p2" ] && break; sleep 0.1; done
[ -b "${disk}p1" ] && [ -b "${disk}p2" ] || fail "the partitions appear"
base=$(mkloop 16) || fail "loop device for a main device"
other=$(mkloop 8) || fail "loop device for an unrelated spare"
# Data in the main device's first half, zeros in the second: a spare over the second
# half looks blank, which is what a target would format.
dd if=/dev/urandom of="$base" bs=1M count=8 oflag=direct status=none || fail "fill"
dd if=/dev/urandom of="$disk" bs=1M seek=1 count=15 oflag=direct status=none || fail "fill"
before=$(sums "$base" "$disk")

refused_load "the whole disk as main, its partition as spare" a "0 32768 remap $disk ${disk}p2"
refused_load "a partition as main, its whole disk as spare" b "0 14336 remap ${disk}p1 $disk"
dm_create lin "0 16384 linear $base 16384" || fail "dm-linear over the main device's second half"
dm_create lin2 "0 16384 linear $(dm_path lin) 0" || fail "dm-linear over that one"
refused_load "a spare stacked on the main device" c "0 32768 remap $base $(dm_path lin)"
refused_load "a spare stacked two deep on the main device" d "0 32768 remap $base $(dm_path lin2)"
dm_create low "0 16384 linear $base 0" || fail "dm-linear over the main device's first half"
refused_load "dm-linear devices over two halves of one disk" e "0 16384 remap $(dm_path low) $(dm_path lin)"
ktap_check "nothing was written to the disks" test "$before" = "$(sums "$base" "$disk")"

dd if=/dev/zero of="${disk}p2" bs=1M oflag=direct status=none 2>/dev/null
dmesg_mark
ktap_check "two partitions of one disk that do not meet are accepted" \
  dm_create f "0 14336 remap ${disk}p1 ${disk}p2" ||
  dmesg_since_mark | grep "device-mapper" | sed 's/^/# /'

dmsetup remove "${PREFIX}f" || fail "remove f"
ktap_check "a main device stacked on one partition, the spare on the other, is accepted" \
  bash -c "dmsetup create ${PREFIX}g --table '0 14336 linear ${disk}p1 0' &&
           dmsetup create ${PREFIX}h --table '0 14336 remap $(dm_path g) ${disk}p2'"
ktap_check "an unrelated spare next to the stacked devices is accepted" \
  dm_create i "0 16384 remap $(dm_path low) $other"
ktap_finish
