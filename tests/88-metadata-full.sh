#!/usr/bin/env bash
# metadata-full: when one more remap would not fit a metadata copy (43,651 remapped
# blocks with one spare, none on the spare block after its neighbour's, so that each is
# a record of its own — the worst case —, restored into the spare's metadata with
# `remapctl meta restore`), the failing write is not acknowledged (EIO), the target enters mode
# failed, says why in the kernel log and raises a dm event (`dmsetup wait` wakes), and
# a `remap` message is refused too. (The other faults of the spare are
# tests/91-spare-faults.sh.)
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd timeout python3
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
[ -x "$REMAPCTL" ] || { ktap_plan 1; fail "remapctl is built ($REMAPCTL)"; }
ktap_plan 6

# 43,651 remapped blocks of 512 bytes (what one copy holds with one spare) go into the
# spare's metadata; block 60000 fails writes, and its remap does not fit.
base=$(mkloop 32) || fail "loop device for the main device"
spare=$(mkloop 32) || fail "loop device for the spare"
main=$(mkfaulty faulty "$base" 65536 wfail:60000:8) || fail "faulty main device"
table="0 65536 remap $main $spare 2 block_size 512"
dm_create f "$table" || fail "create the target with block_size 512"
dmsetup remove "${PREFIX}f" || fail "remove it"
DMDEVS=("${DMDEVS[@]/${PREFIX}f}")
"$REMAPCTL" meta dump "$spare" > "$WORK/f.json" || fail "remapctl meta dump"
python3 - "$WORK/f.json" <<'EOF' || fail "fill the dump with 43651 entries"
import json, sys
d = json.load(open(sys.argv[1]))
# Spare blocks 7 apart (mod 43651, coprime): no run forms.
d["entries"] = [{"block": b, "state": "remapped", "spare": 0, "spare_block": b * 7 % 43651}
                for b in range(43651)]
d.pop("counts", None)
d["version"] += 1
json.dump(d, open(sys.argv[1], "w"))
EOF
"$REMAPCTL" meta restore "$WORK/f.json" "$spare" | sed 's/^/# /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "remapctl meta restore of 43651 entries"
dm_create f "$table" || fail "create the target over the full metadata"
ktap_check "43651 blocks are remapped" test "$(info f remapped)" = 43651
arm_wait f || fail "event counter"
dmesg_mark
ktap_check "a failing write with the metadata full returns EIO" \
  fails_with "Input/output error" dd if=/dev/zero of="$(dm_path f)" bs=512 seek=60000 count=1 \
    oflag=direct conv=notrunc status=none
ktap_check "mode failed, still 43651 remapped" \
  test "$(info f mode) $(info f remapped)" = "failed 43651"
ktap_check "dmsetup wait woke on the dm event" woke
ktap_check "the kernel log says why" logged "metadata full"
ktap_check "a remap message is refused too" \
  fails_with "Input/output error" dmsetup message "${PREFIX}f" 0 remap 60001
ktap_finish
