#!/usr/bin/env bash
# clear: `clear confirm` moves blocks back a step at a time (up to 128), and stops at the
# first block that cannot move. A: the pending blocks after a block whose main write
# fails stay in the table (the clear stops there, "0 cleared"). B: clear of 140 blocks
# in mode failed (a tripped storm guard), more than one step: all of them. C: a suspend
# during a clear of 384 blocks waits for the clear (the message holds the live table),
# and no commit happens while the device is suspended.
# timeout: 900
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd
modprobe dm-delay 2>/dev/null; grep -qw delay <(dmsetup targets) || skip_all "dm-delay not available"
grep -qw dust <(dmsetup targets) || skip_all "dm-dust not available"
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 7

base=$(mkloop 64) || fail "loop"
spare=$(mkloop 16) || fail "loop"
dust=${PREFIX}dust
dust_create dust "$base" 131072 3100 3101 3102 || fail "dm-dust device with bad blocks 3100-3102"
d=/dev/mapper/$dust
printf '0 24000 linear %s 0\n24000 8 flakey %s 24000 0 3600 1 error_writes\n24008 107064 linear %s 24008\n' "$d" "$d" "$d" |
  dmsetup create "${PREFIX}main" || fail "main"
DMDEVS+=("${PREFIX}main")
main=/dev/mapper/${PREFIX}main
dm_create m "0 131072 remap $main $spare" || fail "target"
n=${PREFIX}m
dev=$(dm_path m)
msg() { dmsetup message -- "$n" 0 "$@"; }
blocks() { msg list | sed -n 's/^block=\([0-9]*\) .*/\1/p' | tr '\n' ' '; }

# A
head -c 4096 /dev/urandom > "$WORK/d3000"
blk_write "$dev" 3000 "$WORK/d3000" || fail "write 3000"
for b in 3100 3101 3102; do blk_read "$dev" $b "$WORK/x" 2>/dev/null; done
diag "A: before clear: $(blocks) pending=$(info m pending) remapped=$(info m remapped)"
dmesg_mark
out=$(msg clear confirm 2>&1); rc=$?
diag "A: clear rc=$rc out=$out"
dmesg_since_mark | grep 'remap:' | sed 's/^/# A log: /'
diag "A: after clear: $(blocks)"
ktap_check "A: pending blocks after the failing block 3000 are kept" test "$(blocks)" = "3000 3100 3101 3102 "
dmsetup remove "$n"; DMDEVS=("${DMDEVS[@]/$n}")

# B: storm -> mode failed with 140 remapped; then clear with a healthy main.
spare2=$(mkloop 16) || fail "loop"
dmsetup suspend "${PREFIX}main"
printf '0 40000 linear %s 0\n40000 3200 flakey %s 40000 0 3600 1 error_writes\n43200 87872 linear %s 43200\n' "$d" "$d" "$d" |
  dmsetup reload "${PREFIX}main" && dmsetup resume "${PREFIX}main" || fail "main wide"
dm_create b "0 131072 remap $main $spare2 2 max_remap_rate 150" || fail "target b"
nb=${PREFIX}b
devb=$(dm_path b)
head -c $((200 * 4096)) /dev/urandom > "$WORK/w"
dd if="$WORK/w" of="$devb" bs=$((140 * 4096)) seek=$((5000 * 4096)) count=1 oflag=direct,seek_bytes status=none
dd if="$WORK/w" of="$devb" bs=$((60 * 4096)) seek=$((5140 * 4096)) skip=$((140 * 4096)) count=1 oflag=direct,seek_bytes iflag=skip_bytes status=none
mode_before=$(info b mode)
diag "B: remapped=$(info b remapped) mode=$mode_before"
dmsetup suspend "${PREFIX}main"
echo "0 131072 linear $d 0" | dmsetup reload "${PREFIX}main" && dmsetup resume "${PREFIX}main" || fail "main clean"
dmesg_mark
out=$(dmsetup message "$nb" 0 clear confirm 2>&1); rc=$?
diag "B: clear rc=$rc out=$out remapped after=$(info b remapped)"
dmesg_since_mark | grep 'remap:' | sed 's/^/# B log: /'
ktap_check "B: mode failed before clear" test "$mode_before" = failed
ktap_check "B: clear in mode failed answers cleared=140" test "$out" = cleared=140
ktap_check "B: nothing remapped after" test "$(info b remapped)" = 0

# C: 384 remapped blocks, clear in the background, suspend meanwhile.
dmsetup suspend "${PREFIX}main"
printf '0 40000 linear %s 0\n40000 3072 flakey %s 40000 0 3600 1 error_writes\n43072 88000 linear %s 43072\n' "$d" "$d" "$d" |
  dmsetup reload "${PREFIX}main" && dmsetup resume "${PREFIX}main" || fail "main wide2"
spare3=$(mkloop 16) || fail "loop"
dm_create c "0 131072 remap $main $spare3" || fail "target c"
nc=${PREFIX}c
devc=$(dm_path c)
head -c $((384 * 4096)) /dev/urandom > "$WORK/w3"
dd if="$WORK/w3" of="$devc" bs=4096 seek=5000 count=384 oflag=direct status=none
diag "C: remapped=$(info c remapped)"
dmsetup suspend "${PREFIX}main"
echo "0 131072 delay $d 0 0 $d 0 15" | dmsetup reload "${PREFIX}main" && dmsetup resume "${PREFIX}main" || fail "main delayed writes"
v0=$(info c meta_version)
( dmsetup message "$nc" 0 clear confirm > "$WORK/cout" 2>&1; echo $? > "$WORK/crc" ) &
cpid=$!
# Wait for the first step's commit, then suspend.
for _ in $(seq 1 400); do [ "$(info c meta_version)" != "$v0" ] && break; sleep 0.05; done
t0=$(date +%s.%N)
dmsetup suspend "$nc"
t1=$(date +%s.%N)
vs=$(info c meta_version); rs=$(info c remapped)
diag "C: suspend took $(echo "$t1 - $t0" | bc)s; at suspend: meta_version=$vs (from $v0) remapped=$rs"
wait $cpid
ve=$(info c meta_version); re=$(info c remapped)
diag "C: clear rc=$(cat "$WORK/crc") out=$(cat "$WORK/cout"); while suspended after: meta_version=$ve remapped=$re"
ktap_check "C: no commit while the device is suspended" test "$ve" = "$vs"
dmsetup resume "$nc"
ktap_check "C: eventually nothing remapped" test "$(info c remapped)" = 0
ktap_check "C: mode ok" test "$(info c mode)" = ok
ktap_finish
