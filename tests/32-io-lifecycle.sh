#!/usr/bin/env bash
# io-lifecycle: I/O across the device's life. A write issued while the device is
# suspended waits and lands after resume; a writer running through eight suspend /
# reload / resume cycles, with remaps and unremaps between them, loses no acknowledged
# write; remove is refused while the device is open and rmmod while a target exists,
# and the target keeps serving; a lost sector (unreadable when its block was moved)
# fails reads until it is written, then reads what was written, also after a reload;
# dm-ima measures the target's IMA line when the table loads (the VM boots with
# ima_policy=critical_data).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
ktap_plan 15
base=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
dm_create l "0 131072 remap $base $spare" || fail "create"
n=${PREFIX}l dev=$(dm_path l)

# 0. The IMA measurement of the table load (dm-ima, template ima-buf: the buffer in hex).
ima=/sys/kernel/security/ima/ascii_runtime_measurements
[ -e "$ima" ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mm() { local d; d=$(stat -L -c '%t %T' "$1") && printf '%d:%d' "0x${d% *}" "0x${d#* }"; }
uuid=$(dmsetup table "$n" | awk '{ print $NF }')
want="target_name=remap,target_version=$(dmsetup targets | awk '$1 == "remap" { sub(/^v/, "", $2); print $2 }'),main_dev=$(mm "$base"),spare_dev=$(mm "$spare"),uuid=$uuid,block_size=4096,read_retries=1,max_remap_rate=1024,mode=ok;"
ima_loads() {
  grep ' dm_table_load' "$ima" | awk '{ print $NF }' |
    python3 -c 'import sys; [print(bytes.fromhex(l.strip()).decode("latin-1")) for l in sys.stdin]'
}
ktap_check "IMA measured the table load" bash -c "test -r $ima && grep -q ' dm_table_load' $ima"
ktap_check "with the target's line: $want" grep -qF -- "$want" <(ima_loads)

# 1. A write while suspended.
head -c 4096 /dev/urandom > "$WORK/b7"
dmsetup suspend "$n" || fail "suspend"
(blk_write "$dev" 7 "$WORK/b7" && touch "$WORK/w7") &
w=$!
sleep 1
ktap_check "a write issued while suspended has not completed" test ! -e "$WORK/w7"
dmsetup resume "$n" || fail "resume"
wait "$w"
ktap_check "it completes after resume" test -e "$WORK/w7"
ktap_check "and reads back" bash -c "dd if=$dev bs=4096 skip=7 count=1 iflag=direct status=none | cmp -s - $WORK/b7"

# 2. A writer through reloads. Each write puts (block, sequence) in every 16 bytes of a
# 4 KiB block; on SIGTERM the writer saves the last acknowledged sequence per block.
cat > "$WORK/writer.py" <<'PY'
import mmap, os, random, signal, struct, sys
dev, out = sys.argv[1], sys.argv[2]
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
acked, stop, errors = {}, False, 0
def term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
rnd, seq = random.Random(7), 0
while not stop:
    b = rnd.randrange(4096)
    seq += 1
    buf.seek(0)
    buf.write(struct.pack("<QQ", b, seq) * 256)
    try:
        os.pwrite(fd, buf, b * 4096)
        acked[b] = seq
    except OSError:
        errors += 1
with open(out, "w") as f:
    f.write(f"{errors} {seq}\n")
    for b, s in sorted(acked.items()):
        f.write(f"{b} {s}\n")
PY
python3 "$WORK/writer.py" "$dev" "$WORK/acked" &
writer=$!
t=$(dmsetup table "$n")
cycles=0
for i in 1 2 3 4 5 6 7 8; do
  sleep 0.3
  dmsetup message "$n" 0 remap $((i * 37)) >/dev/null || diag "remap $((i * 37)) refused"
  suspend_reload_resume "$n" "$t" || break
  [ $((i % 2)) = 0 ] && { dmsetup message "$n" 0 unremap $(((i - 1) * 37)) >/dev/null || diag "unremap refused"; }
  cycles=$i
done
sleep 0.3
kill -TERM "$writer"
wait "$writer"
ktap_check "eight suspend/reload/resume cycles with the writer running" test "$cycles" = 8
read -r errors writes < "$WORK/acked"
diag "writer: $writes writes, $errors errors; remapped now: $(info l remapped)"
ktap_check "the writer saw no I/O error" test "$errors" = 0
verify() {
  python3 - "$dev" "$WORK/acked" <<'PY'
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
bad = 0
lines = open(sys.argv[2]).read().split("\n")[1:]
for line in filter(None, lines):
    b, s = map(int, line.split())
    os.preadv(fd, [buf], b * 4096)
    if bytes(buf) != struct.pack("<QQ", b, s) * 256:
        bad += 1
print(f"# {len(lines) - 1} blocks checked, {bad} wrong")
sys.exit(1 if bad else 0)
PY
}
ktap_check "every acknowledged write reads back" verify

# 3. Remove while open; rmmod while a target exists.
exec 9<"$dev"
ktap_check "remove is refused while the device is open" fails_with "Device or resource busy" dmsetup remove "$n"
exec 9<&-
ktap_check "rmmod is refused while a target exists" fails_with "in use" rmmod dm_remap
ktap_check "and the target still serves I/O (the acknowledged writes read back)" verify

# 4. A lost sector: block 20's sector 3 (sector 163) is unreadable on the main device
# when the block is moved.
base2=$(mkloop 16) || fail "loop device for a second main device"
spare2=$(mkloop 8) || fail "loop device for a second spare"
faulty=$(mkfaulty faulty "$base2" 32768 error:163:1) || fail "faulty main device"
dm_create f "0 32768 remap $faulty $spare2" || fail "create over the faulty device"
fdev=$(dm_path f)
dmsetup message "${PREFIX}f" 0 remap 20 >/dev/null || fail "remap block 20"
ktap_check "the moved block has one lost sector" \
  bash -c "dmsetup message ${PREFIX}f 0 query 20 | grep -q lost_sectors=1"
ktap_check "which fails to read" fails_with "Input/output error" \
  dd if="$fdev" of=/dev/null bs=512 skip=163 count=1 iflag=direct status=none
head -c 512 /dev/urandom > "$WORK/s163"
dd if="$WORK/s163" of="$fdev" bs=512 seek=163 count=1 oflag=direct conv=notrunc status=none ||
  fail "write the lost sector"
ktap_check "written, it reads back what was written" \
  bash -c "dd if=$fdev bs=512 skip=163 count=1 iflag=direct status=none | cmp -s - $WORK/s163"
t=$(dmsetup table "${PREFIX}f")
suspend_reload_resume "${PREFIX}f" "$t" || fail "reload"
ktap_check "and no sector of it is lost after a reload" \
  bash -c "dmsetup message ${PREFIX}f 0 query 20 | grep -q lost_sectors=0 &&
           dd if=$fdev bs=512 skip=163 count=1 iflag=direct status=none | cmp -s - $WORK/s163"
ktap_finish
