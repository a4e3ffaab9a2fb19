#!/usr/bin/env bash
# assemble: two setups made with `remapctl create` and removed come back with
# `remapctl assemble` — spares found by their metadata, main devices by the size the
# metadata records, the table with the recorded configuration and setup UUID — with
# their data and remaps; also when the main device's loop device changed (a renamed
# device). Refused, with the reason and nothing created: a missing main device, two
# devices of the main's size (ambiguous without a recorded identifier), two devices
# holding one setup (a copied spare), a spare in use. A setup is also assembled by the
# name a setups file gives it.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup dd cmp sha256sum
ktap_plan 14
load_module || fail "the dm-remap module loads"
[ -x "$REMAPCTL" ] || fail "remapctl is built ($REMAPCTL)"

# Sizes no other device of the test VM has (its identity disks are 64 MiB).
mainA=$(mkloop 48) && spareA=$(mkloop 16) && mainB=$(mkloop 40) && spareB=$(mkloop 16) ||
  fail "loop devices"
a=${PREFIX}asa b=${PREFIX}asb
"$REMAPCTL" create "$a" --main "$mainA" --spare "$spareA" --read-retries 3 >/dev/null &&
  DMDEVS+=("$a") || fail "create setup A"
"$REMAPCTL" create "$b" --main "$mainB" --spare "$spareB" --block-size 512 >/dev/null &&
  DMDEVS+=("$b") || fail "create setup B"
for t in "$a" "$b"; do
  dd if=/dev/urandom of="/dev/mapper/$t" bs=1M count=4 oflag=direct status=none &&
    dmsetup message "$t" 0 remap 100 >/dev/null && dmsetup message "$t" 0 remap 101 >/dev/null ||
    fail "data and remaps on $t"
done
sumA=$(sha256sum < "/dev/mapper/$a") sumB=$(sha256sum < "/dev/mapper/$b")
uA=$(dmsetup table "$a" | awk '{ print $NF }') uB=$(dmsetup table "$b" | awk '{ print $NF }')
nA=remap-${uA:0:8} nB=remap-${uB:0:8}
"$REMAPCTL" remove "$a" >/dev/null && "$REMAPCTL" remove "$b" >/dev/null || fail "remove both"
DMDEVS+=("$nA" "$nB")

out=$("$REMAPCTL" assemble --scan --dry-run) || fail "assemble --scan --dry-run"
diag "$out"
ktap_check "--dry-run finds both setups and creates nothing" \
  bash -c "grep -q 'setup $uA: would create $nA' <<<'$out' && grep -q 'setup $uB: would create $nB' <<<'$out' &&
    ! dmsetup info $nA >/dev/null 2>&1 && ! dmsetup info $nB >/dev/null 2>&1"
out=$("$REMAPCTL" assemble --scan) || fail "assemble --scan"
diag "$out"
devno() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }
ktap_check "setup A: its main and spare, read_retries 3, its UUID" \
  test "$(dmsetup table "$nA" | cut -d' ' -f4-)" = "$(devno "$mainA") $(devno "$spareA") 4 read_retries 3 uuid $uA"
ktap_check "setup B: its main and spare, block_size 512, its UUID" \
  test "$(dmsetup table "$nB" | cut -d' ' -f4-)" = "$(devno "$mainB") $(devno "$spareB") 4 block_size 512 uuid $uB"
ktap_check "both read back their data, with their 2 remaps" \
  test "$(sha256sum < "/dev/mapper/$nA") $(sha256sum < "/dev/mapper/$nB") $(dmsetup status "$nA" | awk '{print $13}') $(dmsetup status "$nB" | awk '{print $13}')" = \
       "$sumA $sumB 2 2"
ktap_check "a second assemble says setup A is already active" \
  fails_with "setup $uA: already active as $nA" "$REMAPCTL" assemble --uuid "$uA"

# A renamed main device: main A's image on another loop device.
dmsetup remove "$nA" || fail "remove A"
imgA=$(losetup -nO BACK-FILE "$mainA")
losetup -d "$mainA" || fail "detach main A"
hold=$(mkloop 1) || fail "a loop device in main A's place"
mainA2=$(losetup -f --show "$imgA") && echo "$mainA2" >> "$LOOPS_FILE" ||
  fail "main A on another loop device"
diag "main A: $mainA -> $mainA2"
ktap_check "renamed main: found by its size, data intact" \
  bash -c "'$REMAPCTL' assemble --uuid $uA >/dev/null && dmsetup table $nA | grep -q ' $(devno "$mainA2") ' &&
    test \"\$(sha256sum < /dev/mapper/$nA)\" = '$sumA'"
dmsetup remove "$nA" || fail "remove A again"

# By the name the setups file gives it; --incremental takes an active setup as success.
named=${PREFIX}asnamed
printf '# name setup\n%s %s\n%s %s\n' "${PREFIX}other" "$uB" "$named" "$uA" > "$WORK/setups.conf"
DMDEVS+=("$named")
ktap_check "assemble NAME: the setup the setups file names, under that name" \
  bash -c "'$REMAPCTL' assemble --conf $WORK/setups.conf $named >/dev/null &&
    dmsetup table $named | grep -q 'uuid $uA\$' && test \"\$(sha256sum < /dev/mapper/$named)\" = '$sumA'"
ktap_check "--incremental: the setup already active is success, named" \
  bash -c "'$REMAPCTL' assemble --uuid $uA --incremental | grep -qx 'setup $uA: already active as $named'"
dmsetup remove "$named" || fail "remove the named setup"

# Ambiguous: another free device of main A's size.
twin=$(mkloop 48) || fail "a second device of main A's size"
ktap_check "two devices of the main's size: ambiguous, refused" \
  fails_with "main device ambiguous: 2 devices of 98304 sectors" "$REMAPCTL" assemble --uuid "$uA"
losetup -d "$twin" || fail "detach the twin"
# A copied spare: two devices hold setup A.
copy=$(mkloop 16) && dd if="$spareA" of="$copy" bs=1M oflag=direct status=none || fail "copy spare A"
ktap_check "two devices hold one setup: refused" \
  fails_with "two spares carry the same spare UUID (one is a copy)" "$REMAPCTL" assemble --uuid "$uA"
losetup -d "$copy" || fail "detach the copy"
# Missing main: main A detached.
losetup -d "$mainA2" || fail "detach main A"
ktap_check "main device missing: refused" \
  fails_with "main device missing: no free device of 98304 sectors" "$REMAPCTL" assemble --uuid "$uA"
ktap_check "and nothing was created" bash -c "! dmsetup info $nA >/dev/null 2>&1"
# A spare in use: held by a dm-linear device over a part of it past its metadata.
dmsetup create "${PREFIX}hold" --table "0 1000 linear $spareA 20000" && DMDEVS+=("${PREFIX}hold") ||
  fail "hold spare A"
ktap_check "a spare in use is not read: the setup is not found" \
  fails_with "no free device holds setup $uA" "$REMAPCTL" assemble --uuid "$uA"
ktap_check "--name needs --uuid (bad usage)" fails_with "--name and --main are for the one setup --uuid gives" \
  "$REMAPCTL" assemble --scan --name x
ktap_finish
