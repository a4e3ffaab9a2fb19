#!/usr/bin/env bash
# load: the module loads by name, registers target "remap", auto-loads, unloads.
. "$(dirname "$0")/lib.sh"
need dmsetup modprobe
ktap_plan 5

rmmod dm_remap 2>/dev/null
ktap_check "modprobe dm-remap" modprobe dm-remap
ktap_check "target remap registered" bash -c "dmsetup targets | grep -q '^remap *v0\.1\.0'"
ktap_check "rmmod dm_remap" rmmod dm_remap
ktap_check "target gone after rmmod" bash -c "! dmsetup targets | grep -q '^remap '"

# dm core asks for module dm-remap when a table names target "remap".
main=$(mkloop 64) spare=$(mkloop 16)
if dm_create auto "0 131072 remap $main $spare" && grep -q '^dm_remap ' /proc/modules; then
  ktap_pass "dmsetup create auto-loads the module"
else
  ktap_fail "dmsetup create auto-loads the module"
fi
ktap_finish
