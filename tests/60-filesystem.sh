#!/usr/bin/env bash
# filesystem: ext4 on dm-remap over a disk with bad blocks: files verify, e2fsck is
# clean, and badblocks -w through dm-remap finds no bad block.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup mkfs.ext4 e2fsck badblocks sha256sum mountpoint
ktap_plan 12
load_module || fail "the dm-remap module loads"

base=$(mkloop 128) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
# Bad blocks (no read, no write) scattered over ext4's inode tables, journal and data
# (4 KiB blocks). Not the superblock or group descriptor blocks: mkfs writes those with
# sub-page buffered writes, whose read-modify-write must fail on an unreadable block
# (on any disk, remapped or not: nothing can be read to complete the page). dm-error fails reads and writes but lets flushes through, as a
# disk with bad sectors does (dm-flakey's error_writes would fail flushes too).
specs=()
for blk in 5000 7000 9000 12000 16000 18000 20000 25000 28000 30000; do
  specs+=("error:$((blk * 8)):8")
done
main=$(mkfaulty fs "$base" 262144 "${specs[@]}") || fail "faulty main device"
dm_create f "0 262144 remap $main $spare" || fail "create the target"
dev=$(dm_path f) mnt=$WORK/mnt
mkdir -p "$mnt" || fail "mount point"
# Every step below is checked: if ext4 did not mount, the files would land in the
# plain directory and verify there.
ktap_check "mkfs.ext4 succeeds over 10 bad blocks" mkfs.ext4 -q -F "$dev" || bail
ktap_check "ext4 mounts (rw), and $mnt is that filesystem" must_mount "$dev" "$mnt" || bail
write_files() {
  local i
  for i in $(seq 1 20); do head -c $((i * 300000)) /dev/urandom > "$mnt/f$i" || return 1; done
  (cd "$mnt" && sha256sum f* > "$WORK/sums") && sync -f "$mnt"
}
ktap_check "20 files written and synced" write_files || bail
ktap_check "umount" must_umount "$mnt" || bail
ktap_check "e2fsck -fn is clean" e2fsck -fn "$dev"
ktap_check "ext4 mounts again (ro)" must_mount "$dev" "$mnt" -o ro || bail
ktap_check "every file verifies after remount" bash -c "cd '$mnt' && sha256sum -c --quiet '$WORK/sums'"
ktap_check "umount" must_umount "$mnt" || bail
diag "remapped=$(info f remapped) pending=$(info f pending) hidden write errors: $(dmsetup message ${PREFIX}f 0 stats | grep -o 'write_errors_hidden=[0-9]*')"
ktap_check "the target is healthy" test "$(info f mode)" = ok
ktap_check "no write error reached the filesystem" test "$(info f write_errors)" = 0

# badblocks -w writes and verifies 4 patterns over every block.
dmsetup remove "${PREFIX}f" || fail "remove the ext4 target"
base2=$(mkloop 24) || fail "loop device for the second main device"
main2=$(mkfaulty bb "$base2" 49152 error:800:8 error:8000:8 error:20000:16 error:40000:8) ||
  fail "second faulty main device"
# A fresh spare: the first one holds the ext4 setup's metadata, which no table option
# may format over.
spare2=$(mkloop 16) || fail "loop device for the second spare"
dm_create b "0 49152 remap $main2 $spare2" || fail "create the badblocks target"
out=$(badblocks -w -b 4096 "$(dm_path b)" 2>&1); rc=$?
ktap_check "badblocks -w through dm-remap reports nothing" test "$rc:$out" = "0:"
ktap_check "and the bad blocks were remapped" test "$(info b remapped)" -ge 4
ktap_finish
