#!/usr/bin/env bash
# error-classes: only media errors (BLK_STS_IOERR, BLK_STS_MEDIUM) are remapped. A
# capacity error of the main device (BLK_STS_NOSPC: a loop device whose backing file's
# filesystem is full) and a failed flush go up unchanged and consume no spare block; a
# read that fails once and succeeds on the retry returns the data and is counted as
# read_retried_ok (fail_make_request fails exactly one bio of the main device).
# BLK_STS_AGAIN needs REQ_NOWAIT bios, which the target does not take: a RWF_NOWAIT
# write is refused by the block layer before it reaches the target. BLK_STS_TRANSPORT,
# TIMEOUT and RESOURCE have no injector in the test kernel: fail_make_request, dm-error,
# dm-flakey and dm-dust fail I/O with BLK_STS_IOERR only (scsi_debug's per-command
# error injection, CONFIG_SCSI_DEBUG, could give them).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 19

# untouched <name> <meta_version>: no remap, no pending block, no spare block, mode ok,
# no commit since <meta_version>.
untouched() {
  local got want="0 0 0 0 ok $2"
  got="$(info "$1" remapped) $(info "$1" pending) $(info "$1" spare_used) $(info "$1" remaps) $(info "$1" mode) $(info "$1" meta_version)"
  [ "$got" = "$want" ] && return 0
  diag "remapped pending spare_used remaps mode meta_version: $got (want $want)"
  return 1
}

# NOSPC: the main device is a loop device over a sparse file on a 1 MiB tmpfs that is
# then filled; a write into a hole of the file fails with ENOSPC, which the loop driver
# returns as BLK_STS_NOSPC. Block 5 is allocated before the tmpfs fills up.
mkdir "$WORK/fs" && mount -t tmpfs -o size=1m dmrt "$WORK/fs" || fail "mount a 1 MiB tmpfs"
truncate -s 64M "$WORK/fs/main.img" || fail "sparse main image"
nmain=$(losetup -f --show "$WORK/fs/main.img") && echo "$nmain" >> "$LOOPS_FILE" ||
  fail "loop device over the sparse image"
spare=$(mkloop 16) || fail "loop device for the spare"
dm_create n "0 131072 remap $nmain $spare" || fail "create the target over the sparse main"
dev=$(dm_path n)
head -c 4096 /dev/urandom > "$WORK/a" || fail "random data"
blk_write "$dev" 5 "$WORK/a" || fail "write block 5 before the tmpfs is full"
dd if=/dev/zero of="$WORK/fs/fill" bs=4096 status=none 2>/dev/null
sync
v0=$(info n meta_version)
ktap_check "a write into a hole of the full backing file fails with ENOSPC, passed up unchanged" \
  fails_with "No space left on device" blk_write "$dev" 100 "$WORK/a"
ktap_check "ENOSPC consumes no spare block: no remap, nothing pending, mode ok, no commit" \
  untouched n "$v0"
ktap_check "it is counted as a write error, not hidden" \
  test "$(info n write_errors) $(counter n write_errors_hidden)" = "1 0"
ktap_check "query 100: state=main" test "$(dmsetup message "${PREFIX}n" 0 query 100)" = "block=100 state=main"
head -c 4096 /dev/urandom > "$WORK/b"
ktap_check "a write to an allocated block still succeeds" blk_write "$dev" 5 "$WORK/b"
rm -f "$WORK/fs/fill"
ktap_check "once there is space, the same write succeeds on the main device" blk_write "$dev" 100 "$WORK/a"
back_on_main() {
  blk_read "$dev" 100 "$WORK/a.back" && cmp -s "$WORK/a" "$WORK/a.back" &&
    dd if="$nmain" bs=4096 skip=100 count=1 iflag=direct status=none | cmp -s - "$WORK/a" &&
    untouched n "$v0"
}
ktap_check "and reads back from the main device, still with no remap" back_on_main

# AGAIN: a RWF_NOWAIT write is refused by the block layer (the target does not take
# REQ_NOWAIT bios), so no BLK_STS_AGAIN can come back to it from below.
nowait() {
  python3 - "$dev" <<'EOF'
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    os.pwritev(fd, [buf], 200 * 4096, os.RWF_NOWAIT)
except OSError as e:
    print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode.get(e.errno, e.errno))
    sys.exit(1)
print("written")
EOF
}
ktap_check "a RWF_NOWAIT write is refused with EOPNOTSUPP before it reaches the target" \
  test "$(nowait)" = EOPNOTSUPP
ktap_check "and consumes no spare block" untouched n "$v0"

# Flush errors: the main device's table has, past the end the target uses, a dm-flakey
# segment that fails writes (error_writes; dm core sends an empty flush, a write without
# data, to every segment). Data I/O to the target never reaches it; every flush of the
# main device fails.
fbase=$(mkloop 64) || fail "loop device for the second main device"
spare2=$(mkloop 16) || fail "loop device for the second spare"
fm=${PREFIX}fmain
printf '0 131072 linear %s 0\n131072 8 flakey %s 0 0 3600 1 error_writes\n' "$fbase" "$fbase" |
  dmsetup create "$fm" || fail "main device whose flushes fail"
DMDEVS+=("$fm")
dm_create f "0 131072 remap /dev/mapper/$fm $spare2" || fail "create the target over it"
fdev=$(dm_path f)
head -c 4096 /dev/urandom > "$WORK/c"
ktap_check "a write without flush succeeds" blk_write "$fdev" 7 "$WORK/c"
v1=$(info f meta_version) w1=$(info f write_errors)
ktap_check "fsync of the device fails with EIO (the main device's flush failed)" \
  fails_with "Input/output error" dd if=/dev/null of="$fdev" conv=fsync,notrunc status=none
ktap_check "the failed flush consumes no spare block and leaves mode ok" untouched f "$v1"
ktap_check "it is counted as a write error" test "$(info f write_errors)" = $((w1 + 1))
ktap_check "the data written before the flush reads back" \
  bash -c "dd if=$fdev bs=4096 skip=7 count=1 iflag=direct status=none | cmp -s - $WORK/c"

# Read retry: fail_make_request fails exactly one bio of the main device's loop device
# (times=1); the read of block 20 fails once, the retry reads it.
fi=/sys/kernel/debug/fail_make_request
[ -d "$fi" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -d "$fi" ] || fail "fail_make_request in debugfs (CONFIG_FAIL_MAKE_REQUEST)"
mif=/sys/block/${fbase#/dev/}/make-it-fail
head -c 4096 /dev/urandom > "$WORK/d"
blk_write "$fdev" 20 "$WORK/d" || fail "write block 20"
dmsetup message "${PREFIX}f" 0 clear_stats || fail "clear_stats"
restore_fi() { echo 0 > "$mif"; echo 0 > "$fi/probability"; echo 1 > "$fi/times"; }
{ echo 0 > "$fi/space" && echo 1 > "$fi/interval" && echo 1 > "$fi/verbose" &&
  echo 100 > "$fi/probability" && echo 1 > "$fi/times" && echo 1 > "$mif"; } ||
  { restore_fi; fail "arm fail_make_request for $fbase"; }
dmesg_mark
blk_read "$fdev" 20 "$WORK/d.back"; rc=$?
injected=$(dmesg_since_mark | grep -c 'FAULT_INJECTION: forcing a failure')
restore_fi
ktap_check "fail_make_request failed one bio of the main device" test "$injected" = 1
ktap_check "the read that failed once succeeds" test "$rc" = 0
ktap_check "and returns the block's data" cmp -s "$WORK/d" "$WORK/d.back"
ktap_check "stats: read_retried_ok=1, read_errors=0" \
  test "$(counter f read_retried_ok) $(counter f read_errors)" = "1 0"
ktap_check "no remap, nothing pending, no spare block used" untouched f "$v1"
ktap_finish
