#!/usr/bin/env bash
# bad-input: every malformed table line is rejected with its own error and leaves
# nothing behind (no device, no held loop device); bad messages are rejected.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup
load_module || skip_all "dm-remap not loadable"

main=$(mkloop 64) spare=$(mkloop 16) tiny=$(mkloop 4)
cases=(
  "0 131072 remap|Not enough arguments"
  "0 131072 remap $main|Not enough arguments"
  "0 131072 remap $main $spare x|Invalid number of optional arguments"
  "0 131072 remap $main $spare 3 block_size 4096|Invalid number of optional arguments"
  "0 131072 remap $main $spare 1 block_size 4096|Too many arguments"
  "0 131072 remap $main $spare 0 junk|Too many arguments"
  "0 131072 remap $main $spare 1 bogus|Unknown optional argument"
  "0 131072 remap $main $spare 1 block_size|Optional argument needs a value"
  "0 131072 remap $main $spare 2 block_size 4k|Invalid number"
  "0 131072 remap $main $spare 2 block_size 99999999999999999999999|Number out of range"
  "0 131072 remap $main $spare 2 block_size 3000|Invalid block_size"
  "0 131072 remap $main $spare 2 block_size 131072|Invalid block_size"
  "0 131072 remap $main $spare 4 block_size 512 block_size 512|Duplicate optional argument"
  "0 131072 remap $main $spare 2 read_retries 17|Invalid read_retries"
  "0 131072 remap /dev/nonexistent $spare|Main device lookup failed"
  "0 131072 remap $main /dev/nonexistent|Spare device lookup failed"
  "0 131072 remap $main $main|Spare device is the main device"
  "0 139264 remap $main $spare|Target extends beyond the end of the main device"
  "0 131071 remap $main $spare|Target length is zero or not a multiple of block_size"
  "0 131072 remap $main $tiny|Spare device too small"
)
ktap_plan $((${#cases[@]} * 2 + 3))
for c in "${cases[@]}"; do
  table=${c%%|*} want=${c#*|}
  dmesg_mark
  if dmsetup create "${PREFIX}bad" --table "$table" >/dev/null 2>&1; then
    DMDEVS+=("${PREFIX}bad")
    ktap_fail "rejected: $table"
    dmsetup remove "${PREFIX}bad"; DMDEVS=()
  elif dmesg_since_mark | grep -q "remap: $want"; then
    ktap_pass "rejected with '$want': ${table#0 * remap }"
  else
    dmesg_since_mark | tail -3 | sed 's/^/# /'
    ktap_fail "rejected with '$want': ${table#0 * remap }"
  fi
  held=$(ls /sys/block/"${main##*/}"/holders /sys/block/"${spare##*/}"/holders 2>/dev/null | grep -c dm-)
  if ! dmsetup info "${PREFIX}bad" >/dev/null 2>&1 && [ "$held" = 0 ]; then
    ktap_pass "nothing left behind"
  else
    ktap_fail "nothing left behind"
  fi
done

dm_create m "0 131072 remap $main $spare"
ktap_check "unknown message verb rejected" bash -c "! dmsetup message ${PREFIX}m 0 frobnicate 2>/dev/null"
ktap_check "wrong argument count rejected" bash -c "! dmsetup message ${PREFIX}m 0 stats extra 2>/dev/null"
ktap_check "target still serves I/O" dd if="$(dm_path m)" of=/dev/null bs=4096 count=4 iflag=direct status=none
ktap_finish
