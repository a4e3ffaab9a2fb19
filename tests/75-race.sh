#!/usr/bin/env bash
# race: writes and reads race `remap`, `unremap` and `clear` on the same blocks. No
# acknowledged write may be lost (a write that looked the table up before a remap
# published BUSY must be waited for before the block is copied), no read may return
# another block's data (a spare block must not be reused under a read), deferred writes
# follow the table as it is when they run (not always to the spare: blocks are remapped
# only by `remap` here, as main never fails), and the metadata checks clean after.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 5

main=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
dm_create r "0 131072 remap $main $spare" || exit 1
dev=$(dm_path r)
# On a debug kernel (lockdep, KASAN) everything runs several times slower: the race
# runs three times as long, so that it still reaches the counts checked below.
secs=${RACE_SECONDS:-40}
[ -e /proc/lockdep ] && secs=$((secs * 3))
out=$(python3 "$(dirname "$0")/race/race.py" "$dev" "${PREFIX}r" "${RACE_BLOCKS:-16}" "$secs")
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
ktap_check "every acknowledged write reads back; no read returns another block's data" test "$rc" = 0
summary=$(printf '%s\n' "$out" | grep '^RACE ')
get() { printf '%s\n' "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ktap_check "the race ran: writes, reads and remaps happened" \
  test "$(get writes)" -gt 100 -a "$(get reads)" -gt 100 -a "$(get remap_ok)" -gt 5 -a "$(get unremap_ok)" -gt 5
# Main never fails here, so the only remaps are the `remap` messages that succeeded.
ktap_check "blocks were remapped only by remap messages ($(info r remaps) = $(get remap_ok))" \
  test "$(info r remaps)" = "$(get remap_ok)"
ktap_check "mode is ok" test "$(info r mode)" = ok
dmsetup message "${PREFIX}r" 0 clear confirm >/dev/null
ktap_check "clear leaves nothing remapped" test "$(info r remapped)" = 0 -a "$(info r spare_used)" = 0
ktap_finish
