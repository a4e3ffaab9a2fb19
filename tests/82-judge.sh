#!/usr/bin/env bash
# timeout: 600
# judge: one judge of decoded metadata. Every state of remap-forge's corpus (valid
# checksums, each breaking one rule) gets the same verdict from the kernel (dmsetup
# create fails with it in the kernel log, or succeeds for the valid state) and from
# `remapctl meta check` on the same spare.
. "$(dirname "$0")/lib.sh"
need dmsetup losetup
load_module || { ktap_plan 1; fail "the dm-remap module loads"; }
FORGE=${FORGE:-$(cd "$(dirname "$0")/.." && pwd)/rust/target/debug/remap-forge}
[ -x "$FORGE" ] && [ -x "$REMAPCTL" ] || skip_all "remap-forge/remapctl not built (cargo build)"
mapfile -t corpus < <("$FORGE" --list)
ktap_plan "${#corpus[@]}"

main=$(mkloop 64) || exit 1
for line in "${corpus[@]}"; do
  case=${line%%$'\t'*} want=${line#*$'\t'}
  img=$WORK/$case.img
  "$FORGE" "$case" "$img" 131072 32768 >/dev/null 2>&1
  rc=$?
  if [ "$rc" = 2 ]; then
    ktap_skip "$case: cannot be built with 4 KiB blocks over 512-byte sectors"
    continue
  fi
  [ "$rc" = 0 ] || { ktap_fail "$case: remap-forge failed ($rc)"; continue; }
  spare=$(losetup -f --show "$img") || { ktap_fail "$case: losetup"; continue; }
  dmesg_mark
  if dmsetup create "${PREFIX}j" --table "0 131072 remap $main $spare" 2>/dev/null; then
    kernel=OK
    dmsetup remove "${PREFIX}j" >/dev/null 2>&1
  else
    kernel=$(dmesg_since_mark | sed -n 's/.*device-mapper: remap: \(Spare .*\)$/\1/p' | head -1)
    [ -n "$kernel" ] || kernel="(refused, no verdict in the log)"
  fi
  losetup -d "$spare"
  check=$("$REMAPCTL" meta check "$img" 2>&1)
  if [ $? = 0 ]; then tool=OK; else tool=$(printf '%s\n' "$check" | sed -n 's/.*refused: //p' | head -1); fi
  if [ "$kernel" = "$want" ] && [ "$tool" = "$want" ]; then
    ktap_pass "$case: kernel and remapctl agree: $want"
  else
    diag "$case: want '$want', kernel '$kernel', remapctl '$tool'"
    ktap_fail "$case: kernel and remapctl agree: $want"
  fi
done
ktap_finish
