#!/usr/bin/env bash
# pool: a target with two spares fills them in table order (the small first spare, then
# the second), keeps the metadata on both (each spare's five copies clean and of one
# version, `remapctl meta check` of the pair), prints both in `dmsetup table` and
# reloads from that line; refuses a table that leaves a spare of the pool out or names
# the spares in another order; adds a blank third spare given in the table; and, when
# one spare's metadata is older than the other's, loads the newest and rewrites the
# stale spare; `remapctl assemble` finds the pool; `remapctl spare-add` adds a spare
# to the live target while fio writes and verifies. The data reads back through every
# step.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp mknod fio
ktap_plan 27
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Blocks 4096..4395 (300 blocks, sectors 32768..35167) fail writes; reads pass.
base=$(mkloop 64) || fail "loop device for the main device"
# 5 MiB: 128 data blocks after the 9216 metadata sectors. 16 MiB: 2944.
spa=$(mkloop 5) || fail "loop device for the first spare"
spb=$(mkloop 16) || fail "loop device for the second spare"
spc=$(mkloop 8) || fail "loop device for the third spare"
main=$(mkfaulty faulty "$base" 131072 wfail:32768:2400) || fail "faulty main device"
na=$(devno "$spa") nb=$(devno "$spb") nc=$(devno "$spc")
dry=$("$REMAPCTL" create x --main "$main" --spare "$spa" --spare "$spb" --dry-run 2>&1)
diag "remapctl create --dry-run: $(tail -1 <<<"$dry")"
ktap_check "remapctl create names both spares in the order given" \
  grep -q "^0 131072 remap $(devno "$main") $na $nb\$" <<<"$dry"
dm_create x "0 131072 remap $main $spa $spb 2 max_remap_rate 0" ||
  fail "create a target with two spares"
dev=$(dm_path x)

table=$(dmsetup table "${PREFIX}x")
diag "table: $table"
ktap_check "dmsetup table names both spares, in order" \
  grep -q " remap [0-9]*:[0-9]* $na $nb 4 max_remap_rate 0 uuid " <<<"$table"
list=$(dmsetup message "${PREFIX}x" 0 spare_list)
printf '%s\n' "$list" | sed 's/^/# spare_list: /'
ktap_check "spare_list: two spares with their own UUIDs" \
  test "$(awk '{ print $3 }' <<<"$list" | sort -u | wc -l)" = 2

head -c $((300 * 4096)) /dev/urandom > "$WORK/data" || fail "random data"
ktap_check "300 blocks written over write-failing blocks" \
  dd if="$WORK/data" of="$dev" bs=4096 seek=4096 oflag=direct conv=notrunc status=none
ktap_check "300 blocks remapped, mode ok" \
  test "$(info x remapped) $(info x mode)" = "300 ok"
stats=$(dmsetup message "${PREFIX}x" 0 spare_stats)
printf '%s\n' "$stats" | sed 's/^/# spare_stats: /'
ktap_check "the first spare filled first (128 of 128), the rest on the second (172 of 2944)" \
  test "$(awk '{ print $3, $4, $5 }' <<<"$stats" | tr '\n' ' ')" = \
  "blocks=128 used=128 free=0 blocks=2944 used=172 free=2772 "
readback() {
  dd if="$dev" of="$WORK/back" bs=4096 skip=4096 count=300 iflag=direct status=none &&
    cmp -s "$WORK/data" "$WORK/back"
}
ktap_check "the 300 blocks read back the same" readback

# What one remap commits: a log record per copy on every spare (one 512-byte logical
# block each here), not the whole map. Sectors written to each spare's loop device
# (/sys/block/loopN/stat, field 7) around a `remap` message of a clean block.
wsec() { awk '{ print $7 }' "/sys/block/$(basename "$1")/stat"; }
a0=$(wsec "$spa") b0=$(wsec "$spb")
dmsetup message "${PREFIX}x" 0 remap 10000 || fail "remap message"
a1=$(wsec "$spa") b1=$(wsec "$spb")
diag "one remap: spare 0 wrote $((a1 - a0)) sectors, spare 1 $((b1 - b0)) (the block's data: 8)"
ktap_check "one remap writes 5 record sectors to the full spare, 5 + the block's 8 to the other" \
  test "$((a1 - a0)) $((b1 - b0))" = "5 13"
ktap_check "and the remap is recorded" test "$(info x remapped)" = 301
# A reload from the printed line keeps the pool and its map.
suspend_reload_resume "${PREFIX}x" "$table" || fail "reload the printed table"
ktap_check "after a reload: 301 remapped, data the same" \
  eval 'test "$(info x remapped)" = 301 && readback'

dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
# shellcheck disable=SC2046
"$REMAPCTL" meta check $(nodes "$na" "$nb") | sed 's/^/# /'
# shellcheck disable=SC2046
ktap_check "the metadata is on both spares, clean and of one version" \
  "$REMAPCTL" meta check $(nodes "$na" "$nb")
dd if="$spb" of="$WORK/b-meta" bs=512 count=9216 iflag=direct status=none ||
  fail "save the second spare's metadata area"

# A spare of the pool left out, and the spares in another order.
dmesg_mark
ktap_check_fails "a table without the second spare is refused" \
  dmsetup create "${PREFIX}y" --table "0 131072 remap $main $spa"
ktap_check "with 'A spare of the pool is missing from the table'" \
  eval 'dmesg_since_mark | grep -qF "A spare of the pool is missing from the table"'
dmesg_mark
ktap_check_fails "a table naming the spares in another order is refused" \
  dmsetup create "${PREFIX}y" --table "0 131072 remap $main $spb $spa"
ktap_check "with 'Spares are named in another order than the metadata lists them'" \
  eval 'dmesg_since_mark | grep -qF "Spares are named in another order than the metadata lists them"'

# A blank third spare named after the others joins the pool.
dm_create x "0 131072 remap $main $spa $spb $spc 2 max_remap_rate 0" ||
  fail "create with a blank third spare"
ktap_check "spare_list: three spares" \
  test "$(dmsetup message "${PREFIX}x" 0 spare_list | wc -l)" = 3
ktap_check "the data reads back with the third spare" readback
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
# shellcheck disable=SC2046
ktap_check "the metadata is on all three spares, clean" \
  "$REMAPCTL" meta check $(nodes "$na" "$nb" "$nc")

# The second spare's metadata from before the third spare joined: older than the
# others'. The newest is loaded and the stale spare rewritten.
dd if="$WORK/b-meta" of="$spb" bs=512 oflag=direct conv=notrunc status=none ||
  fail "put the older metadata back on the second spare"
dmesg_mark
dm_create x "0 131072 remap $main $spa $spb $spc 2 max_remap_rate 0" ||
  fail "create with the second spare's metadata stale"
ktap_check "the stale spare is rewritten" logged "spare 1 does not hold metadata version"
ktap_check "the data reads back" readback
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
# shellcheck disable=SC2046
ktap_check "the three spares are clean again" \
  "$REMAPCTL" meta check $(nodes "$na" "$nb" "$nc")
# remapctl assemble finds the pool and names its spares in the list's order.
uuid=$(awk '{ for (i = 1; i < NF; i++) if ($i == "uuid") print $(i + 1) }' <<<"$table")
plan=$("$REMAPCTL" assemble --uuid "$uuid" --main "$main" --dry-run 2>&1)
diag "assemble: $plan"
ktap_check "remapctl assemble puts the three spares in pool order" \
  grep -qF " remap $(devno "$main") $na $nb $nc " <<<"$plan"

# A fourth spare added online (remapctl spare-add: a table reload) while fio writes
# and verifies 48 MiB across the device, the remapped blocks included.
spd=$(mkloop 8) || fail "loop device for the fourth spare"
nd=$(devno "$spd")
dm_create x "0 131072 remap $main $spa $spb $spc 2 max_remap_rate 0" ||
  fail "create with the three spares"
fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 \
  --rw=randwrite --bs=4k --size=48M --verify=crc32c --verify_fatal=1 --do_verify=1 \
  --randrepeat=1 --verify_state_save=0 --rate_iops=2000 \
  --output="$WORK/fio.log" >/dev/null 2>&1 &
fio_pid=$!
sleep 2
ktap_check "remapctl spare-add adds the fourth spare during the writes" \
  "$REMAPCTL" spare-add "${PREFIX}x" "$spd"
wait "$fio_pid"
rc=$?
[ "$rc" = 0 ] || tail -20 "$WORK/fio.log" | sed 's/^/# /'
ktap_check "fio's writes during the reload verify (crc32c)" test "$rc" = 0
ktap_check "spare_list: four spares, the new one last" \
  eval 'dmsetup message "${PREFIX}x" 0 spare_list | tail -1 | grep -q "^spare=3 dev=$nd "'
ktap_check_fails "spare-add refuses a device that is already in the pool" \
  "$REMAPCTL" spare-add "${PREFIX}x" "$spd"
dmsetup remove "${PREFIX}x" || fail "remove the target"
DMDEVS=("${DMDEVS[@]/${PREFIX}x}")
# shellcheck disable=SC2046
ktap_check "the four spares hold the metadata, clean" \
  "$REMAPCTL" meta check $(nodes "$na" "$nb" "$nc" "$nd")
ktap_finish
