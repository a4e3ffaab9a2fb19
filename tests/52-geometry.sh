#!/usr/bin/env bash
# timeout: 300
# geometry: where bios fall against remap blocks and table segments. A target that
# starts at a nonzero sector between two linear segments maps its sector 0 to the main
# device's sector 0; one write over several bad blocks remaps each of them and nothing
# else; unaligned 512-byte I/O straddling a remapped block goes to main, spare, main,
# each part at its own offset; block_size 512 and 65536 remap exactly the failing block
# (the 64 KiB one carries the block's other 60 KiB over from main); a reload with another
# length and a reload after the spare grew are refused with the reason, the old table
# staying live; a read-only table serves remapped blocks and writes nothing.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp cksum
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 26

base=$(mkloop 16) || fail "loop device for the main device"
spare=$(mkloop 8) || fail "loop device for the spare"
head_dev=$(mkloop 2) || fail "loop device for the linear segments"
# 4 KiB blocks. Blocks 100, 102 and 104 (sectors 800, 816, 832) fail writes, reads pass.
main=$(mkfaulty g "$base" 32768 wfail:800:8 wfail:816:8 wfail:832:8) || fail "faulty main device"
# Target sector 0 is device sector 2048, between two linear segments on another device.
table="0 2048 linear $head_dev 0
2048 32768 remap $main $spare
34816 2048 linear $head_dev 2048"
n=${PREFIX}r dev=$(dm_path r) off=2048
# dmsetup's --table takes one line: tables of several segments go through stdin.
printf '%s\n' "$table" | dmsetup create "$n" || fail "create the three-segment table"
DMDEVS+=("$n")
reload() { printf '%s\n' "$2" | dmsetup reload "$1"; }
# The remap segment's status field <n> (lib's info reads single-segment tables) and its
# messages (sent to the sector where the segment starts).
rfield() { dmsetup status "$n" | awk -v n="$1" '$3 == "remap" { print $(3 + n) }'; }
rmsg() { dmsetup message "$n" "$off" "$@"; }

# sectors_of <dev> <sector> <count> <out>: one direct read of <count> sectors (dd with
# bs=512 would issue one bio per sector, and no bio would straddle anything).
sectors_of() { dd if="$1" of="$4" bs=$(($3 * 512)) count=1 skip=$(($2 * 512)) iflag=direct,skip_bytes status=none; }
# put <file> <dev> <sector>: the whole file in one direct write at <sector>.
put() { dd if="$1" of="$2" bs="$(stat -c %s "$1")" count=1 seek=$(($3 * 512)) oflag=direct,seek_bytes conv=notrunc status=none; }

# 1. One 64 KiB write over blocks 96..111, three of which fail on the main device.
head -c 65536 /dev/urandom > "$WORK/big" || fail "random data"
ktap_check "a 64 KiB write over three write-failing blocks succeeds" \
  put "$WORK/big" "$dev" $((off + 768))
ktap_check "status: exactly the three blocks remapped" \
  test "$(rfield 10) $(rfield 12)" = "3 3"
three_listed() {
  local l
  l=$(rmsg list | grep -o '^block=[0-9]* state=[a-z]*' | tr '\n' ' ')
  [ "$l" = "block=100 state=remapped block=102 state=remapped block=104 state=remapped " ] ||
    { diag "list: $l"; return 1; }
}
ktap_check "list names blocks 100, 102 and 104" three_listed
sectors_of "$dev" $((off + 768)) 128 "$WORK/big.back"
ktap_check "a 64 KiB read over the three remapped blocks returns the data" cmp -s "$WORK/big" "$WORK/big.back"
# The clean blocks reached the main device at target offset (block 96 = main sector 768),
# not at the device offset.
sectors_of "$base" 768 32 "$WORK/main.96"
ktap_check "blocks 96..99 are on the main device at target sector 768" \
  cmp -s -n 16384 "$WORK/big" "$WORK/main.96"
ktap_check "the linear segments are untouched" cmp -s -n 2097152 "$head_dev" /dev/zero

# 2. Unaligned 512-byte I/O straddling remapped block 102: from sector 5 of block 101 to
# sector 2 of block 103 (main sectors 813..826).
head -c $((14 * 512)) /dev/urandom > "$WORK/mid" || fail "random data"
ktap_check "an unaligned 7 KiB write straddling remapped block 102 succeeds" \
  put "$WORK/mid" "$dev" $((off + 813))
cp "$WORK/big" "$WORK/want" && dd if="$WORK/mid" of="$WORK/want" bs=512 seek=$((813 - 768)) conv=notrunc status=none
sectors_of "$dev" $((off + 768)) 128 "$WORK/got"
ktap_check "the 64 KiB around it reads back as expected" cmp -s "$WORK/want" "$WORK/got"
sectors_of "$dev" $((off + 813)) 14 "$WORK/mid.back"
ktap_check "an unaligned read of the same 14 sectors returns them" cmp -s "$WORK/mid" "$WORK/mid.back"
# Its head and tail are on the main device at their own offsets; its middle is on the
# spare, not on main (where block 102 still holds zeros: it never took a write).
ends_on_main() {
  sectors_of "$base" 813 3 "$WORK/h" && sectors_of "$base" 824 3 "$WORK/t" &&
    cmp -s "$WORK/h" <(head -c 1536 "$WORK/mid") &&
    cmp -s "$WORK/t" <(tail -c 1536 "$WORK/mid") &&
    cmp -s -n 4096 <(sectors_of "$base" 816 8 /dev/stdout) /dev/zero
}
ktap_check "head and tail went to main, the middle to the spare" ends_on_main
# A write that starts inside remapped block 102 (its sector 3) and ends in block 103.
head -c 3072 /dev/urandom > "$WORK/in" || fail "random data"
put "$WORK/in" "$dev" $((off + 819))
dd if="$WORK/in" of="$WORK/want" bs=512 seek=$((819 - 768)) conv=notrunc status=none
sectors_of "$dev" $((off + 768)) 128 "$WORK/got"
ktap_check "a write starting inside the remapped block reads back at its offset" cmp -s "$WORK/want" "$WORK/got"
ktap_check "no new remap" test "$(rfield 10)" = 3

# A write across the boundary between the first linear segment and the target.
head -c 4096 /dev/urandom > "$WORK/edge" || fail "random data"
put "$WORK/edge" "$dev" $((off - 4))
edge_ok() {
  cmp -s <(sectors_of "$head_dev" 2044 4 /dev/stdout) <(head -c 2048 "$WORK/edge") &&
    cmp -s <(sectors_of "$base" 0 4 /dev/stdout) <(tail -c 2048 "$WORK/edge")
}
ktap_check "a write across the segment boundary lands at sector 0 of the main device" edge_ok

# 3. Reloads the spare's metadata contradicts: the old table stays live, alone.
t1=$(dmsetup table "$n") || fail "dmsetup table"
old_live() { test "$t1" = "$(dmsetup table "$n")" && dm_live "$n"; }
# refused_because <reason>: the kernel log since the mark gives the reason and EINVAL.
refused_because() {
  dmesg_since_mark | grep -qF ": remap: $1 (" &&
    dmesg_since_mark | grep -qE ": remap: .*\((-22|-EINVAL)\)$" && return 0
  dmesg_since_mark | tail -5 | sed 's/^/# /'
  return 1
}
short="0 2048 linear $head_dev 0
2048 32760 remap $main $spare
34808 2048 linear $head_dev 2048"
dmesg_mark
ktap_check "a reload one block shorter is refused" \
  fails_with "failed: Invalid argument" reload "$n" "$short"
ktap_check "the kernel log says the target length differs" \
  refused_because "Target length differs from the spare's metadata"
ktap_check "and the old table is still live, alone" old_live

spare_img=$(losetup -n -O BACK-FILE "$spare") || fail "the spare's image"
truncate -s 9M "$spare_img" && losetup -c "$spare" || fail "grow the spare by 1 MiB"
dmesg_mark
ktap_check "after the spare grew, a reload of the same table is refused" \
  fails_with "failed: Invalid argument" reload "$n" "$t1"
ktap_check "the kernel log says the spare's size differs" \
  refused_because "Spare device size differs from the spare's metadata"
remaps_serve() { old_live && sectors_of "$dev" $((off + 768)) 128 "$WORK/got2" && cmp -s "$WORK/want" "$WORK/got2"; }
ktap_check "the live table still serves the remapped blocks" remaps_serve
truncate -s 8M "$spare_img" && losetup -c "$spare" || fail "shrink the spare back"

# 4. A read-only table over the same devices: remapped blocks read back from the spare,
# a write is refused and nothing reaches either device.
dmsetup remove "$n" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/$n}")
# Direct reads: the page cache of the loop devices would not see a write from dm.
sums() { for d in "$spare" "$base"; do dd if="$d" bs=1M iflag=direct status=none | cksum; done; }
before=$(sums)
printf '%s\n' "$t1" | dmsetup create "$n" --readonly || fail "create a read-only table"
DMDEVS+=("$n")
sectors_of "$dev" $((off + 768)) 128 "$WORK/got3"
ktap_check "a read-only table reads the remapped blocks back" cmp -s "$WORK/want" "$WORK/got3"
ktap_check_fails "a write through the read-only table is refused" \
  dd if="$WORK/edge" of="$dev" bs=4096 seek=$(((off + 816) / 8)) count=1 oflag=direct conv=notrunc status=none
dmsetup remove "$n" || fail "remove the read-only table"
DMDEVS=("${DMDEVS[@]/$n}")
ktap_check "neither the spare nor the main device changed" test "$before" = "$(sums)"

# 5. block_size 512: a 4 KiB write over one failing sector remaps that sector only.
spare2=$(mkloop 8) || fail "loop device for the second spare"
main2=$(mkfaulty fs "$base" 32768 error:3000:1) || fail "faulty main device, one bad sector"
dm_create s "0 32768 remap $main2 $spare2 2 block_size 512" || fail "create with block_size 512"
head -c 4096 /dev/urandom > "$WORK/s" || fail "random data"
put "$WORK/s" "$(dm_path s)" 2996
one_sector() {
  local q
  q=$(for b in 2999 3000 3001; do dmsetup message "${PREFIX}s" 0 query $b; done | tr '\n' ' ')
  [[ $q == "block=2999 state=main block=3000 state=remapped "*" block=3001 state=main " ]] &&
    test "$(info s remapped) $(info s block_size)" = "1 512" && return 0
  diag "query: $q; remapped $(info s remapped)"
  return 1
}
ktap_check "block_size 512: only the failing sector is remapped" one_sector
sectors_of "$(dm_path s)" 2996 8 "$WORK/s.back"
ktap_check "block_size 512: the 4 KiB read back" cmp -s "$WORK/s" "$WORK/s.back"

# 6. block_size 65536: main block 32 (sectors 4096..4223) fails all I/O in sectors
# 4104..4111 only. A 4 KiB write there remaps the block and carries the other 60 KiB
# over from the main device.
spare3=$(mkloop 8) || fail "loop device for the third spare"
head -c 65536 /dev/urandom > "$WORK/old64" || fail "random data"
put "$WORK/old64" "$base" 4096 || fail "old data under block 32"
main3=$(mkfaulty fl "$base" 32768 error:4104:8) || fail "faulty main device, one bad 4 KiB"
dm_create l "0 32768 remap $main3 $spare3 2 block_size 65536" || fail "create with block_size 65536"
head -c 4096 /dev/urandom > "$WORK/l" || fail "random data"
put "$WORK/l" "$(dm_path l)" 4104
big_block() {
  local q
  q=$(dmsetup message "${PREFIX}l" 0 query 32)
  [[ $q == *"state=remapped "*"lost_sectors=0"* ]] && test "$(info l remapped)" = 1 && return 0
  diag "query 32: $q; remapped $(info l remapped)"
  return 1
}
ktap_check "block_size 65536: the block is remapped with no lost sector" big_block
cp "$WORK/old64" "$WORK/want64" && dd if="$WORK/l" of="$WORK/want64" bs=512 seek=8 conv=notrunc status=none
# An unaligned read from block 31 into block 32.
sectors_of "$base" 4090 6 "$WORK/want.straddle"
head -c $((34 * 512)) "$WORK/want64" >> "$WORK/want.straddle"
sectors_of "$(dm_path l)" 4090 40 "$WORK/l.back"
ktap_check "block_size 65536: a read straddling into the block returns old and new data" \
  cmp -s "$WORK/want.straddle" "$WORK/l.back"
ktap_finish
