#!/usr/bin/env bash
# remapctl: `create` checks the devices and builds the target through the DM ioctls,
# `status`/`list` report what `dmsetup status` says (text and JSON), `remove` removes
# it; every refusal names its reason, exits 1 and leaves nothing behind (no device,
# spare untouched): a spare with foreign data, a device in use, main and spare
# swapped, a spare the kernel refuses (it shares a disk with the main device: the
# kernel's own reason is printed).
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp python3 mkfs.ext4 mount sha256sum promtool
ktap_plan 20
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
n=${PREFIX}rc
devno() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }
# Commands that must fail: exit status 1 and the reason on standard error.
refused() {
  local want=$1 err rc; shift
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = 1 ] && grep -qF -- "$want" <<<"$err" && return 0
  diag "exit $rc, expected 1 with '$want': $err"
  return 1
}
gone() { ! dmsetup info "$n" >/dev/null 2>&1 && [ ! -e "/dev/mapper/$n" ]; }

ktap_check "create --dry-run prints the table line and creates nothing" \
  bash -c "'$REMAPCTL' create $n --main $main --spare $spare --dry-run | grep -qx '0 131072 remap $(devno "$main") $(devno "$spare")' && ! dmsetup info $n >/dev/null 2>&1"
ktap_check "create over a blank spare" \
  "$REMAPCTL" create "$n" --main "$main" --spare "$spare" --read-retries 2
DMDEVS+=("$n")
ktap_check "the node is /dev/mapper/NAME, a block device" test -b "/dev/mapper/$n"
ktap_check "the table is the one asked for (whole main, the devices, the option, the setup)" \
  bash -c "dmsetup table $n | grep -qE '^0 131072 remap $(devno "$main") $(devno "$spare") 4 read_retries 2 uuid [0-9a-f-]{36}\$'"
dm_uuid_is_setup() {
  local setup
  setup=$(dmsetup table "$n" | awk '{ print $NF }' | tr -d -)
  [ "$(dmsetup info -c --noheadings -o uuid "$n")" = "DMREMAP-$setup" ]
}
ktap_check "its DM UUID is DMREMAP-<setup UUID> (the udev rule skips such devices)" dm_uuid_is_setup

head -c 1M /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="/dev/mapper/$n" bs=64k oflag=direct conv=notrunc status=none ||
  fail "write through the target"
dd if="/dev/mapper/$n" of=/dev/null bs=4k count=10 iflag=direct status=none || fail "read"
# Every status field, as remapctl status --json names it, against dmsetup status.
ktap_check "status --json gives every dmsetup status field, by name" python3 - "$n" "$REMAPCTL" <<'EOF'
import json, subprocess, sys
name, remapctl = sys.argv[1], sys.argv[2]
fields = """block_size spare_blocks reads writes flushes read_sectors write_sectors read_errors
write_errors remapped pending spare_used spare_free remaps meta_version last_commit mode
scan_state scan_cursor scan_passes scan_unreadable scan_weak proactive_remaps fenced
health_score alert ttf_s samples""".split()
line = subprocess.run(["dmsetup", "status", name], capture_output=True, text=True, check=True).stdout.split()[3:]
st = json.loads(subprocess.run([remapctl, "status", name, "--json"], capture_output=True, text=True, check=True).stdout)
assert len(line) == len(fields), (line, fields)
shown = lambda v: "-" if v is None else str(v)  # ttf_s: null when there is none
bad = [(f, st["status"][f], v) for f, v in zip(fields, line) if shown(st["status"][f]) != v]
# Counters may move between the two reads only if I/O runs; none does here.
assert not bad, bad
assert st["name"] == name and st["sectors"] == 131072 and st["status"]["writes"] >= 16, st
assert st["table"]["uuid"], st
EOF
# The JSON against its published schema (Debian's python3-jsonschema, so /usr/bin/python3);
# a copy with a field dropped, one of a wrong type and one with an unknown mode must fail.
ktap_check "status --json and list --json follow Documentation/remapctl-status.schema.json" \
  /usr/bin/python3 - "$n" "$REMAPCTL" Documentation/remapctl-status.schema.json <<'EOF'
import copy, json, subprocess, sys
import jsonschema
name, remapctl, path = sys.argv[1:4]
schema = json.load(open(path))
v = jsonschema.Draft202012Validator(schema)
run = lambda *a: json.loads(subprocess.run([remapctl, *a], capture_output=True, text=True, check=True).stdout)
one, every, rows = run("status", name, "--json"), run("status", "--json"), run("list", "--json")
for doc in (one, every, rows):
    errs = [e.message for e in v.iter_errors(doc)]
    assert not errs, errs
assert isinstance(every, list) and any(t["name"] == name for t in every), every
bad = copy.deepcopy(one); del bad["status"]["samples"]
bad2 = copy.deepcopy(one); bad2["status"]["reads"] = "5"
bad3 = copy.deepcopy(one); bad3["status"]["mode"] = "degraded"
for b in (bad, bad2, bad3):
    assert not v.is_valid(b), b["status"]
EOF
ktap_check "list names it with its devices" \
  bash -c "'$REMAPCTL' list | grep -qx '$n dm-[0-9]* 131072 main=$(devno "$main") spare=$(devno "$spare") remapped=0 pending=0 mode=ok'"
ktap_check "status in words says the mode and the spare use" \
  bash -c "'$REMAPCTL' status | grep -A2 '^$n ' | grep -q 'spare used 0 of 2944 blocks of 4096 bytes'"
metrics_ok() {
  local m err
  m=$("$REMAPCTL" metrics) || return 1
  err=$(promtool check metrics <<<"$m" 2>&1) || { diag "promtool: $err"; return 1; }
  grep -qx "dmremap_writes_total{target=\"$n\",device=\"dm-[0-9]*\"} $(info rc writes)" <<<"$m" &&
    grep -qx "dmremap_spare_free_blocks{target=\"$n\",device=\"dm-[0-9]*\"} $(info rc spare_free)" <<<"$m" ||
    { diag "$(grep "target=\"$n\"" <<<"$m" | head -5)"; return 1; }
}
ktap_check "metrics: promtool check metrics passes; counters and gauges equal status" metrics_ok
ktap_check "metrics --textfile writes the same text to the file" \
  bash -c "'$REMAPCTL' metrics --textfile $WORK/m.prom && test -f $WORK/m.prom &&
    test ! -e $WORK/m.prom.tmp && cmp -s $WORK/m.prom <('$REMAPCTL' metrics)"
# remove: a mount is a lasting use, refused at once with its reason; an open that ends
# soon (udev's blkid and probe after every change event) is waited out: longer than
# the devicemapper crate's own 0.8 s of retries.
mkdir -p "$WORK/mnt"
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
mounted_refused() {
  local t0 base took r=0
  mkfs.ext4 -q -F "/dev/mapper/$n" && mount "/dev/mapper/$n" "$WORK/mnt" || return 1
  # What a remapctl command that finds the target takes here (a debug build, under
  # emulation): the refusal may take that plus the devicemapper crate's 0.8 s of
  # tries, not the 5 s of waiting for an open to end.
  t0=$(ms_now); "$REMAPCTL" status "$n" >/dev/null || r=1; base=$(( $(ms_now) - t0 ))
  t0=$(ms_now)
  refused "$n is in use (mounted on $WORK/mnt)" "$REMAPCTL" remove "$n" || r=1
  took=$(( $(ms_now) - t0 ))
  umount "$WORK/mnt" || r=1
  [ "$took" -lt $(( base + 2500 )) ] || { diag "the refusal took $took ms (status: $base ms)"; r=1; }
  return $r
}
ktap_check "remove of a mounted target: refused at once, naming the mount" mounted_refused
(exec 3<"/dev/mapper/$n" && : > "$WORK/held" && sleep 3) &
holder=$!
for _ in $(seq 100); do [ -e "$WORK/held" ] && break; sleep 0.1; done
held_remove() {
  local open
  open=$(dmsetup info -c --noheadings -o open "$n" | tr -d ' ')
  [ "$open" -ge 1 ] 2>/dev/null || { diag "open count $open: the holder does not hold it"; return 1; }
  "$REMAPCTL" remove "$n"
}
ktap_check "remove waits out a short open (the holder ends after 3 s)" held_remove
wait "$holder"
ktap_check "the device and its node are gone" gone
ktap_check "remove again: no such device" refused "no device-mapper device named $n" "$REMAPCTL" remove "$n"
ktap_check "status of a missing target: refused" refused "no device-mapper device named $n" "$REMAPCTL" status "$n"

# Main and spare swapped: the spare now holds dm-remap metadata.
ktap_check "main and spare swapped: refused" refused "it is a spare; are main and spare swapped?" \
  "$REMAPCTL" create "$n" --main "$spare" --spare "$main"

# A spare with foreign data: refused and untouched, unless --format-spare.
other=$(mkloop 16) || fail "loop device with foreign data"
dd if=/dev/urandom of="$other" bs=1M count=5 oflag=direct status=none || fail "foreign data"
sum=$(sha256sum < "$other")
foreign_refused() {
  refused "not dm-remap metadata" "$REMAPCTL" create "$n" --main "$main" --spare "$other" &&
    gone && test "$(sha256sum < "$other")" = "$sum"
}
ktap_check "a spare with foreign data: refused, nothing created, the spare untouched" foreign_refused

# A main device in use (mounted).
mkfs.ext4 -q "$other" && mkdir -p "$WORK/mnt" && mount "$other" "$WORK/mnt" || fail "mount a filesystem"
ktap_check "a main device that is mounted: refused as in use" \
  refused "in use (mounted, or held by another device" "$REMAPCTL" create "$n" --main "$other" --spare "$spare"
umount "$WORK/mnt" || fail "umount"

# What only the kernel can see: a spare on the same disk as the main device (two
# dm-linear devices over one loop device). remapctl prints the kernel's reason.
disk=$(mkloop 96) || fail "loop device for a shared disk"
dmsetup create "${PREFIX}lo" --table "0 131072 linear $disk 0" &&
  dmsetup create "${PREFIX}hi" --table "0 65536 linear $disk 131072" || fail "two halves of one disk"
DMDEVS+=("${PREFIX}lo" "${PREFIX}hi")
shared_refused() {
  refused "the kernel refused the table: The spare shares sectors with the main device" \
    "$REMAPCTL" create "$n" --main "/dev/mapper/${PREFIX}lo" --spare "/dev/mapper/${PREFIX}hi" && gone
}
ktap_check "a spare that shares a disk with main: the kernel's reason, nothing left behind" shared_refused
ktap_finish
