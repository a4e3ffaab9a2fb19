#!/usr/bin/env bash
# fua: a write that asks for durability (REQ_FUA: O_DIRECT|O_DSYNC) keeps asking when
# dm-remap writes it again. The main device sits on dm-log-writes, which logs each
# write with its flags; dm-dust above it fails the first write to block 30, so the
# write reaches the log only through dm-remap's retry, which must carry FUA.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
for t in dust log-writes; do
  grep -qw "$t" <(dmsetup targets) || skip_all "dm-$t not available"
done
ktap_plan 4

base=$(mkloop 64) || exit 1
logdev=$(mkloop 64) || exit 1
spare=$(mkloop 16) || exit 1
lw=${PREFIX}lw dust=${PREFIX}fdust
dmsetup create "$lw" --table "0 131072 log-writes $base $logdev" || exit 1
DMDEVS+=("$lw")
dmsetup create "$dust" --table "0 131072 dust /dev/mapper/$lw 0 4096" || exit 1
DMDEVS+=("$dust")
dmsetup message "$dust" 0 addbadblock 30 1 && dmsetup message "$dust" 0 enable || exit 1
dm_create f "0 131072 remap /dev/mapper/$dust $spare" || exit 1
dev=$(dm_path f)

head -c 4096 /dev/urandom > "$WORK/plain"
head -c 4096 /dev/urandom > "$WORK/retried"
dd if="$WORK/plain" of="$dev" bs=4096 seek=50 count=1 oflag=direct,dsync conv=notrunc status=none || exit 1
ktap_check "a FUA write that fails once succeeds" \
  dd if="$WORK/retried" of="$dev" bs=4096 seek=30 count=1 oflag=direct,dsync conv=notrunc status=none
counter() { dmsetup message "${PREFIX}f" 0 stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ktap_check "the main device took it when written again (write_retried_ok=1)" \
  test "$(counter write_retried_ok)" = 1

# Tear the stack down (the log is complete once dm-log-writes is removed), then read
# the flags of the logged writes of blocks 50 and 30.
for d in "${PREFIX}f" "$dust" "$lw"; do dmsetup remove "$d" || exit 1; done
DMDEVS=()
dd if="$logdev" of="$WORK/log.img" bs=1M status=none || exit 1
flags=$(python3 - "$WORK/log.img" "$WORK/plain" "$WORK/retried" <<'PY'
import sys
import importlib.util, os
spec = importlib.util.spec_from_file_location("replay", os.path.join(os.getcwd(), "tests/crash/replay.py"))
replay = importlib.util.module_from_spec(spec); spec.loader.exec_module(replay)
log, plain, retried = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
found = {}
for e in replay.read_log(log):
    for name, blk, data in (("plain", 50, plain), ("retried", 30, retried)):
        if e.sector == blk * 4096 and e.data == data:
            found[name] = "fua" if e.flags & replay.FUA else "nofua"
print(found.get("plain", "missing"), found.get("retried", "missing"))
PY
)
diag "logged flags: block 50 (plain FUA write): ${flags% *}, block 30 (retried): ${flags#* }"
ktap_check "the stack passes FUA to the log (the plain FUA write is logged with FUA)" test "${flags% *}" = fua
ktap_check "the retried write reached the main device with FUA" test "${flags#* }" = fua
ktap_finish
