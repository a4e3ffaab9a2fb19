#!/usr/bin/env bash
# load: the module loads by name, registers target "remap", auto-loads, unloads.
. "$(dirname "$0")/lib.sh"
need dmsetup modprobe
ktap_plan 7

# has_target <name>: 0 if `dmsetup targets` lists the target, 1 if it does not, 2 if
# the listing itself failed or is not one (dm core's own "linear" is missing): a check
# that a target is gone must not pass because dmsetup failed.
has_target() {
  local out
  out=$(dmsetup targets 2>&1) || { diag "dmsetup targets failed: $out"; return 2; }
  grep -q '^linear ' <<<"$out" || { diag "dmsetup targets lists no linear target: $out"; return 2; }
  grep -q "^$1 " <<<"$out"
}
lacks_target() { has_target "$1"; [ $? = 1 ]; }
# module_loaded: the same three answers for /proc/modules.
module_loaded() {
  local out
  out=$(cat /proc/modules) || return 2
  grep -q '^dm_remap ' <<<"$out"
}
module_gone() { module_loaded; [ $? = 1 ]; }

if module_loaded; then rmmod dm_remap || fail "rmmod dm_remap, loaded before the test"; fi
ktap_check "modprobe dm-remap" modprobe dm-remap || bail
ktap_check "target remap registered" bash -c "dmsetup targets | grep -q '^remap *v0\.1\.0'"
ktap_check "rmmod dm_remap" rmmod dm_remap
ktap_check "module gone after rmmod" module_gone
ktap_check "target gone after rmmod" lacks_target remap

# dm core asks for module dm-remap when a table names target "remap".
main=$(mkloop 64) || fail "loop device for the main device"
spare=$(mkloop 16) || fail "loop device for the spare"
ktap_check "dmsetup create with target remap" dm_create auto "0 131072 remap $main $spare"
ktap_check "dmsetup create auto-loaded the module" module_loaded
ktap_finish
