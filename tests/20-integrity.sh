#!/usr/bin/env bash
# integrity: data written through remap reads back, including unaligned 512-byte I/O at
# random offsets, and lands on the main device at the same offset; fio verify.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp
ktap_plan 5
load_module || fail "the dm-remap module loads"

main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
dm_create i "0 131072 remap $main $spare" || fail "create the target"
dev=$(dm_path i)

# Random writes of 1..64 sectors at random 512-byte offsets, checked one by one and
# mirrored into a reference image.
ref=$WORK/ref
truncate -s 64M "$ref" || fail "reference image"
RANDOM=4242
bad=0
for i in $(seq 1 60); do
  off=$((RANDOM * 4 % 131000)) len=$((RANDOM % 64 + 1))
  head -c $((len * 512)) /dev/urandom > "$WORK/chunk" || fail "random data"
  flag=oflag=direct
  [ $((i % 3)) = 0 ] && flag=conv=fsync       # buffered too, through the page cache
  dd if="$WORK/chunk" of="$dev" bs=512 seek="$off" $flag conv=notrunc status=none || bad=1
  dd if="$WORK/chunk" of="$ref" bs=512 seek="$off" conv=notrunc status=none || fail "write the reference image"
  dd if="$dev" of="$WORK/back" bs=512 skip="$off" count="$len" iflag=direct status=none || bad=1
  cmp -s "$WORK/chunk" "$WORK/back" || { diag "mismatch at $off+$len"; bad=1; }
done
ktap_check "60 random unaligned writes read back" test "$bad" = 0
ktap_check "whole device equals the reference image" cmp -s "$dev" "$ref"
sync && echo 3 > /proc/sys/vm/drop_caches || fail "sync and drop caches"
ktap_check "main device holds the same bytes at the same offsets" \
  cmp -s -n $((131072 * 512)) "$main" "$ref"
ktap_check "spare data area untouched by passthrough I/O" \
  bash -c "cmp -s -n \$((2944 * 4096)) <(dd if=$spare bs=512 skip=9216 status=none) /dev/zero"

if command -v fio >/dev/null; then
  if fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 \
      --rw=randwrite --bsrange=512-64k --size=32M --verify=crc32c --verify_fatal=1 \
      --do_verify=1 --randrepeat=1 --verify_state_save=0 --output="$WORK/fio.log" >/dev/null 2>&1; then
    ktap_pass "fio randwrite 512B-64KiB with crc32c verify"
  else
    cat "$WORK/fio.log" | sed 's/^/# /' | tail -20
    ktap_fail "fio randwrite 512B-64KiB with crc32c verify"
  fi
else
  ktap_skip "fio randwrite 512B-64KiB with crc32c verify (no fio)"
fi
ktap_finish
