#!/usr/bin/env bash
# write-error: writes that fail on the main device succeed through a remap, keep the
# rest of their block, are durable across remove/create, and reads of unreadable blocks
# fail honestly until a write remaps them.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
ktap_plan 19
load_module || fail "the dm-remap module loads"

base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
# Block 100 and 200: no I/O at all. Block 300: reads pass, writes fail.
# Block 400: unreadable, never written. Blocks 500-503: one bad block inside a
# 16 KiB run, for straddling I/O.
main=$(mkfaulty faulty "$base" 131072 error:800:8 error:1600:8 wfail:2400:8 error:3200:8 error:4008:8) ||
  fail "faulty main device"
table="0 131072 remap $main $spare"
dm_create r "$table" || fail "create the target"
dev=$(dm_path r)

head -c 4096 /dev/urandom > "$WORK/a"
ktap_check "write to a bad block succeeds" blk_write "$dev" 100 "$WORK/a"
blk_read "$dev" 100 "$WORK/a.back"
ktap_check "and reads back the same bytes" cmp -s "$WORK/a" "$WORK/a.back"
ktap_check "status: 1 remapped block, 1 spare block used" test "$(info r remapped) $(info r spare_used)" = "1 1"
ktap_check "query names the spare block" bash -c "dmsetup message ${PREFIX}r 0 query 100 | grep -q 'remapped'"
spare_blk=$(dmsetup message "${PREFIX}r" 0 query 100 | sed -n 's/.*spare_block=\([0-9]*\).*/\1/p')
dd if="$spare" of="$WORK/a.spare" bs=512 skip=$((9216 + spare_blk * 8)) count=8 status=none
ktap_check "the data lives on the spare's data area" cmp -s "$WORK/a" "$WORK/a.spare"

# Partial write into a block whose other sectors are readable: they are carried over.
head -c 4096 /dev/urandom > "$WORK/old" || fail "random data"
dd if="$WORK/old" of="$base" bs=512 seek=2400 oflag=direct conv=notrunc status=none ||
  fail "old data under the write-failing block"
head -c 512 /dev/urandom > "$WORK/sec"
ktap_check "512-byte write into a write-failing block succeeds" \
  dd if="$WORK/sec" of="$dev" bs=512 seek=2403 count=1 oflag=direct conv=notrunc status=none
cp "$WORK/old" "$WORK/want"
dd if="$WORK/sec" of="$WORK/want" bs=512 seek=3 conv=notrunc status=none
blk_read "$dev" 300 "$WORK/got"
ktap_check "the other 7 sectors of the block are kept" cmp -s "$WORK/want" "$WORK/got"

# Reads of an unreadable, never-written block fail; a write then remaps it.
ktap_check "read of an unreadable block fails with EIO" \
  fails_with "Input/output error" blk_read "$dev" 400 "$WORK/x"
ktap_check "status: the block is pending" test "$(info r pending)" = 1
head -c 4096 /dev/urandom > "$WORK/b"
blk_write "$dev" 400 "$WORK/b"; blk_read "$dev" 400 "$WORK/b.back"
ktap_check "a write remaps the pending block and reads back" cmp -s "$WORK/b" "$WORK/b.back"
ktap_check "status: pending 0, remapped 3" test "$(info r pending) $(info r remapped)" = "0 3"

# A partial write to an unreadable block: the unwritten sectors are lost, and read
# back as errors, never as zeros.
dd if="$WORK/sec" of="$dev" bs=512 seek=1600 count=1 oflag=direct conv=notrunc status=none
ktap_check "written sector of a partly lost block reads back" \
  bash -c "dd if=$dev bs=512 skip=1600 count=1 iflag=direct status=none | cmp -s - $WORK/sec"
ktap_check "lost sectors read as errors (EIO)" \
  fails_with "Input/output error" dd if="$dev" of=/dev/null bs=512 skip=1601 count=1 iflag=direct status=none

# Straddling I/O: 64 KiB over blocks 496..511 with block 501 bad.
head -c 65536 /dev/urandom > "$WORK/big"
before=$(info r remapped)
ktap_check "64 KiB write straddling a bad block succeeds" \
  dd if="$WORK/big" of="$dev" bs=65536 seek=$((496 / 16)) count=1 oflag=direct status=none
ktap_check "only the bad block was remapped" test "$(info r remapped)" = $((before + 1))
ktap_check "64 KiB read straddling a remapped block returns the data" \
  bash -c "dd if=$dev bs=65536 skip=31 count=1 iflag=direct status=none | cmp -s - $WORK/big"

# Remove and create again: every remap and every byte is still there.
dmsetup remove "${PREFIX}r" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}r}")
dm_create r "$table" || fail "create the target again"
blk_read "$dev" 100 "$WORK/a.back2"
ktap_check "after remove/create the remapped data reads back" cmp -s "$WORK/a" "$WORK/a.back2"
ktap_check "after remove/create the counts are the same" test "$(info r remapped)" = 5
ktap_check "the target is healthy" test "$(info r mode)" = ok
ktap_finish
