#!/usr/bin/env bash
# bad-input: every malformed table line is rejected with its own error and leaves
# nothing behind (no device, no held loop device, the spare's bytes unchanged); every
# malformed message is rejected with its own error and changes nothing (table, status).
# Reasons are matched whole: dm core logs "<dev>: remap: <reason> (-<errno>)" for a
# table (the errno as a number, or its name with CONFIG_SYMBOLIC_ERRNAME) and the
# target logs "remap: message: <reason>" (or the block it refuses) for a message, so a
# reason that is a prefix of another (e.g. "Invalid number") cannot match the longer one.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need dmsetup losetup sha256sum

# <table>|<reason>|<errno>; MAIN, SPARE and TINY (a spare too small) stand for loop devices.
cases=(
  "0 131072 remap|Not enough arguments|EINVAL"
  "0 131072 remap MAIN|Not enough arguments|EINVAL"
  "0 131072 remap MAIN SPARE x|Invalid number of optional arguments|EINVAL"
  "0 131072 remap MAIN SPARE 3 block_size 4096|Invalid number of optional arguments|EINVAL"
  "0 131072 remap MAIN SPARE 1 block_size 4096|Too many arguments|EINVAL"
  "0 131072 remap MAIN SPARE 0 junk|Too many arguments|EINVAL"
  "0 131072 remap MAIN SPARE 1 bogus|Unknown optional argument|EINVAL"
  "0 131072 remap MAIN SPARE 1 block_size|Optional argument needs a value|EINVAL"
  "0 131072 remap MAIN SPARE 2 block_size 4k|Invalid number|EINVAL"
  "0 131072 remap MAIN SPARE 2 block_size 99999999999999999999999|Number out of range|EINVAL"
  "0 131072 remap MAIN SPARE 2 block_size 3000|Invalid block_size (power of two, 512..65536 bytes)|EINVAL"
  "0 131072 remap MAIN SPARE 2 block_size 131072|Invalid block_size (power of two, 512..65536 bytes)|EINVAL"
  "0 131072 remap MAIN SPARE 4 block_size 512 block_size 512|Duplicate optional argument|EINVAL"
  "0 131072 remap MAIN SPARE 2 read_retries 17|Invalid read_retries (0..16)|EINVAL"
  "0 131072 remap MAIN SPARE 2 max_remap_rate 1000001|Invalid max_remap_rate (0..1000000)|EINVAL"
  "0 131072 remap MAIN SPARE 2 uuid 1234|Invalid uuid (32 hex digits or the 8-4-4-4-12 form, not all zero)|EINVAL"
  "0 131072 remap MAIN SPARE 2 uuid 00000000-0000-0000-0000-000000000000|Invalid uuid (32 hex digits or the 8-4-4-4-12 form, not all zero)|EINVAL"
  "0 131072 remap /dev/nonexistent SPARE|Main device lookup failed|ENOENT"
  "0 131072 remap MAIN /dev/nonexistent|Spare device lookup failed|ENOENT"
  "0 131072 remap MAIN MAIN|Spare device is the main device|EINVAL"
  "0 139264 remap MAIN SPARE|Target extends beyond the end of the main device|EINVAL"
  "0 131071 remap MAIN SPARE|Target length is zero or not a multiple of block_size|EINVAL"
  "0 131072 remap MAIN TINY|Spare device too small for metadata and one data block|EINVAL"
  "0 131072 remap MAIN SPARE SPARE|Spare device named twice|EINVAL"
  "0 131072 remap MAIN SPARE TINY|Spare device too small for metadata and one data block|EINVAL"
)
# <message>|<what the kernel log says after "remap: ">; the target has 16384 blocks.
messages=(
  "frobnicate|message: Unknown message verb"
  "stats extra|message: Wrong number of message arguments"
  "help me|message: Wrong number of message arguments"
  "query|message: Wrong number of message arguments"
  "remap 1 2|message: Wrong number of message arguments"
  "clear|message: Wrong number of message arguments"
  "clear now|message: Wrong number of message arguments"
  "clear_failed now|message: Wrong number of message arguments"
  "query x|message: Invalid number"
  "query -1|message: Invalid number"
  "remap 99999999999999999999999|message: Number out of range"
  "unremap 1 2 3 4|message: too many arguments"
  "query 16384|block 16384 is beyond the target (16384 blocks)"
  "remap 18446744073709551615|block 18446744073709551615 is beyond the target (16384 blocks)"
)
ktap_plan $((${#cases[@]} * 3 + ${#messages[@]} * 3 + 1))
load_module || fail "the dm-remap module loads"
main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
tiny=$(mkloop 4) || fail "loop device for the tiny spare"
declare -A strerror=([EINVAL]="Invalid argument" [ENOENT]="No such file or directory")
declare -A errnum=([EINVAL]=22 [ENOENT]=2)

# one_line <text>...: since the mark, the kernel logged exactly one line from the remap
# target, and it ends with one of the texts.
one_line() {
  local lines t
  lines=$(dmesg_since_mark | grep -F ': remap: ')
  if [ "$(grep -c . <<<"$lines")" = 1 ]; then
    for t in "$@"; do [[ $lines == *"$t" ]] && return 0; done
  fi
  diag "kernel log since the command (want one line ending with '$1'):"
  dmesg_since_mark | tail -5 | sed 's/^/# /'
  return 1
}
spare_sum() { dd if="$spare" bs=1M count=5 iflag=direct status=none | sha256sum; }
spare_before=$(spare_sum) || fail "checksum of the spare's metadata area"
for c in "${cases[@]}"; do
  IFS='|' read -r table want errno <<<"$c"
  table=${table//MAIN/$main} table=${table//SPARE/$spare} table=${table//TINY/$tiny}
  short=${table#0 * remap }
  dmesg_mark
  if err=$(dmsetup create "${PREFIX}bad" --table "$table" 2>&1); then
    DMDEVS+=("${PREFIX}bad")
    ktap_fail "rejected: $short"
    ktap_fail "rejected with '$want': $short"
    dmsetup remove "${PREFIX}bad"; DMDEVS=()
  else
    ktap_check "rejected with ${strerror[$errno]}: $short" \
      grep -qF "failed: ${strerror[$errno]}" <<<"$err" || diag "dmsetup said: $err"
    ktap_check "kernel log: '$want' ($errno): $short" \
      one_line "remap: $want (-${errnum[$errno]})" "remap: $want (-$errno)"
  fi
  left_behind() {
    local d held
    for d in "$main" "$spare" "$tiny"; do
      held=$(ls -A "/sys/block/${d##*/}/holders") || return 1
      [ -z "$held" ] || { diag "$d is held by $held"; return 1; }
    done
    ! dmsetup info "${PREFIX}bad" >/dev/null 2>&1 && [ "$(spare_sum)" = "$spare_before" ]
  }
  ktap_check "nothing left behind (no device, no holder, the spare unchanged)" left_behind
done

dm_create m "0 131072 remap $main $spare" || fail "create the target for the message cases"
state() { dmsetup table "${PREFIX}m" && dmsetup status "${PREFIX}m"; }
before=$(state) || fail "table and status of the target"
for c in "${messages[@]}"; do
  IFS='|' read -r msg want <<<"$c"
  dmesg_mark
  # The message's words are separate arguments; "--": a word such as "-1" is not an
  # option of dmsetup's.
  # shellcheck disable=SC2086
  if err=$(dmsetup message -- "${PREFIX}m" 0 $msg 2>&1); then
    ktap_fail "message '$msg' rejected (it answered: $err)"
    ktap_fail "kernel log: '$want': $msg"
  else
    ktap_check "message '$msg' rejected with Invalid argument" \
      grep -qF "failed: Invalid argument" <<<"$err" || diag "dmsetup said: $err"
    ktap_check "kernel log: '$want': $msg" one_line "remap: $want"
  fi
  unchanged() { test "$(state)" = "$before"; }
  ktap_check "table and status unchanged after '$msg'" unchanged
done
ktap_check "target still serves I/O" dd if="$(dm_path m)" of=/dev/null bs=4096 count=4 iflag=direct status=none
ktap_finish
