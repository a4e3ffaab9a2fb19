#!/usr/bin/env bash
# spare-failure: when I/O to the spare fails (the only copy of a remapped block), the
# error goes up unchanged (no invented data), the target enters mode failed, counts it,
# and raises a dm event (`dmsetup wait` wakes); new remaps stop. When the spare comes
# back, `clear_failed` resumes normal operation.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp timeout
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 9

main=$(mkloop 64) || exit 1
sbase=$(mkloop 16) || exit 1
sp=${PREFIX}sp
dmsetup create "$sp" --table "0 32768 linear $sbase 0" || exit 1
DMDEVS+=("$sp")
dm_create x "0 131072 remap $main /dev/mapper/$sp" || exit 1
dev=$(dm_path x)
head -c 4096 /dev/urandom > "$WORK/a"
blk_write "$dev" 5 "$WORK/a" || exit 1
dmsetup message "${PREFIX}x" 0 remap 5 >/dev/null || exit 1
counter() { dmsetup message "${PREFIX}x" 0 stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ev0=$(dmsetup info -c --noheadings -o events "${PREFIX}x")
# Wait for the next event in the background, as a monitor would.
timeout 60 dmsetup wait "${PREFIX}x" "$ev0" >/dev/null 2>&1 &
waiter=$!

# The spare dies: every I/O to it fails from now on.
dmsetup suspend "$sp" && dmsetup reload "$sp" --table "0 32768 error" && dmsetup resume "$sp" || exit 1
ktap_check_fails "a read of the remapped block fails (its only copy is gone)" blk_read "$dev" 5 "$WORK/x"
ktap_check "mode is failed" test "$(info x mode)" = failed
ktap_check "the spare error is counted" test "$(counter spare_errors)" -ge 1
ktap_check "dmsetup wait woke up on the dm event" wait "$waiter"
ktap_check "the kernel log names the cause" bash -c "dmesg | grep -q 'spare I/O error'"
ktap_check "unremapped blocks still work" blk_write "$dev" 100 "$WORK/a"

# The spare comes back (same data): the admin clears the mode.
dmsetup suspend "$sp" && dmsetup reload "$sp" --table "0 32768 linear $sbase 0" && dmsetup resume "$sp" || exit 1
ktap_check "still failed until the admin acts" test "$(info x mode)" = failed
ktap_check "clear_failed succeeds" dmsetup message "${PREFIX}x" 0 clear_failed
blk_read "$dev" 5 "$WORK/back"
ktap_check "mode ok and the block reads back" \
  test "$(info x mode)" = ok -a "$(cmp "$WORK/a" "$WORK/back" && echo same)" = same
ktap_finish
