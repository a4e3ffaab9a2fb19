#!/usr/bin/env bash
# 4kn: main and spare with 4 KiB logical sectors. Every I/O dm-remap makes respects the
# devices' logical block size: metadata copies are written in whole 4 KiB sectors (a
# blank spare is formatted, the setup reloads), and when the rest of a block is carried
# over from a main device whose block does not read as a whole, it is read 4 KiB at a
# time (512-byte reads fail on such a disk), so the readable part is kept.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 7

loop4k() {
  local img dev
  img=$(mktemp "$WORK/img4k.XXXXXX") && truncate -s "${1}M" "$img" || return 1
  dev=$(losetup -f --show --sector-size 4096 "$img") || return 1
  echo "$dev" >> "$LOOPS_FILE"
  echo "$dev"
}
base=$(loop4k 64) || exit 1
spare=$(loop4k 16) || exit 1
ktap_check "the devices have 4 KiB logical sectors" \
  test "$(blockdev --getss "$base") $(blockdev --getss "$spare")" = "4096 4096"
# 8 KiB remap blocks: block 100 = sectors 1600..1615 = 4 KiB units 200 and 201; the
# second fails all I/O.
main=$(mkfaulty f4k "$base" 131072 error:1608:8) || exit 1
head -c 8192 /dev/urandom > "$WORK/old"
dd if="$WORK/old" of="$base" bs=4096 seek=200 oflag=direct conv=notrunc status=none || exit 1
ktap_check "a blank 4Kn spare is formatted" dm_create k "0 131072 remap $main $spare 2 block_size 8192"
dev=$(dm_path k)
head -c 4096 /dev/urandom > "$WORK/new"
ktap_check "a 4 KiB write to the failing half of block 100 succeeds" \
  dd if="$WORK/new" of="$dev" bs=4096 seek=201 count=1 oflag=direct conv=notrunc status=none
diag "query 100: $(dmsetup message ${PREFIX}k 0 query 100)"
ktap_check "block 100 is remapped with no lost sector" \
  bash -c "dmsetup message ${PREFIX}k 0 query 100 | grep -q 'state=remapped .*lost_sectors=0'"
dd if="$dev" of="$WORK/got" bs=4096 skip=200 count=2 iflag=direct status=none
head -c 4096 "$WORK/old" > "$WORK/want" && cat "$WORK/new" >> "$WORK/want"
ktap_check "the readable half was carried over, the written half reads back" cmp -s "$WORK/want" "$WORK/got"
dmsetup remove "${PREFIX}k" || exit 1
DMDEVS=()
ktap_check "the setup reloads from the 4Kn spare" dm_create k "0 131072 remap $main $spare 2 block_size 8192"
dd if="$dev" of="$WORK/got2" bs=4096 skip=200 count=2 iflag=direct status=none
ktap_check "and block 100 still reads back" cmp -s "$WORK/want" "$WORK/got2"
ktap_finish
