# dm-remap top-level Makefile. The module itself is built by Kbuild (see Kbuild);
# these targets wrap the scripts in scripts/.
#
#   make demo      set up, build, and run the narrated demo in the test VM
#   make check     set up, host tests, module build (+clippy, rustfmt), VM tests,
#                  the dashboard in a browser, boot-time assembly, a short power-cut
#                  run (6 cuts), a short fuzz run of the parsers; the campaigns below
#                  run the same tests longer
#   make bench     fio benchmark in the VM (dm-remap vs dm-linear), under QEMU
#                  instruction counting (BENCH_CLOCK=wall: TCG wall clock)
#   make powercut  the power-cut campaign (CUTS=20; CUTS=100 for a longer run)
#   make crash-replay  crash images replayed from dm-log-writes (CRASH_TRIALS=60)
#   make stress    the 10-minute mixed stress in the VM (STRESS_SECONDS=600)
#   make fuzz      remap-core's parsers under cargo-fuzz (FUZZ_SECONDS=60 per target,
#                  or FUZZ_RUNS=10000000 executions per target)
#   make fuzz-inputs  table lines, messages and parameter writes against the live
#                  module in the VM (FUZZ_INPUTS=10000, FUZZ_SEED=1)
#   make check-debug  the VM tests on the debug kernel (lockdep, kmemleak, slab/list
#                  debugging, Rust overflow checks); a second kernel build of its own
#   make install   the module, remapctl, and the boot-time assembly files (udev rule,
#                  systemd units, modules-load.d); DESTDIR=<root> to stage them
#   make boot-test a Debian guest booted with systemd and udev assembles two setups
#                  by itself (part of make check)
#
# KDIR=<tree> builds the module against another CONFIG_RUST kernel tree.

SHELL := /bin/bash
comma := ,
.PHONY: install uninstall boot-test all deps kernel module clippy fmt fmt-check host-test vm-test powercut crash-replay stress check check-debug demo bench fuzz fuzz-inputs clean

KFILES := $(filter-out src/bindings_generated.rs,$(wildcard src/*.rs))
CUTS ?= 20
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 20

all: module

deps:
	scripts/setup-deps

kernel: deps
	scripts/build-kernel

module: deps
	scripts/build-module

clippy: deps
	scripts/build-module CLIPPY=1

fmt:
	/usr/bin/rustfmt --edition 2021 $(KFILES)
	cd rust && cargo fmt

fmt-check: deps
	/usr/bin/rustfmt --edition 2021 --check $(KFILES)
	cd rust && cargo fmt --check

host-test: deps
	cd rust && cargo test --locked && cargo build --locked
	promtool check rules contrib/prometheus/dmremap-alerts.yml
	cd contrib/prometheus && promtool test rules dmremap-alerts.test.yml

vm-test: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$$(scripts/test-disks)" scripts/vm-run tests/run-all $(TESTS)

# CUT_SPARES > 1: the target has a pool of that many spares, the first cut boot adding
# all but the first and the next one removing the first (tests/powercut/run.py
# --spares N --add-spare --remove-spare).
CUT_SPARES ?= 1
powercut: deps
	cd rust && cargo build --locked
	tests/powercut/run.py --cuts $(CUTS) $(if $(filter-out 1,$(CUT_SPARES)),--spares $(CUT_SPARES) --add-spare --remove-spare)

# The crash-replay campaign: 95-crash-replay with CRASH_TRIALS crash images (make check
# replays CHECK_CRASH_TRIALS of them).
CRASH_TRIALS ?= 60
CRASH_SEED ?= 1
crash-replay: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$$(scripts/test-disks)" scripts/vm-run env CRASH_TRIALS=$(CRASH_TRIALS) \
	  CRASH_SEED=$(CRASH_SEED) TEST_TIMEOUT=$$(( $(CRASH_TRIALS) * 30 + 600 )) \
	  tests/run-all tests/95-crash-replay.sh

# The mixed stress (not part of make check): STRESS_SECONDS of fio verify with bad
# blocks appearing, message storms, suspend/reload cycles, the scan and status polling.
STRESS_SECONDS ?= 600
stress: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$$(scripts/test-disks)" scripts/vm-run env STRESS_SECONDS=$(STRESS_SECONDS) \
	  TEST_TIMEOUT=$$(( $(STRESS_SECONDS) * 3 )) tests/run-all tests/stress/mixed.sh

# In-guest fuzzing of the module's inputs (not part of make check, which runs 1000).
FUZZ_INPUTS ?= 10000
FUZZ_SEED ?= 1
fuzz-inputs: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$$(scripts/test-disks)" scripts/vm-run env FUZZ_INPUTS=$(FUZZ_INPUTS) \
	  FUZZ_SEED=$(FUZZ_SEED) TEST_TIMEOUT=$$(( $(FUZZ_INPUTS) / 2 + 600 )) \
	  tests/run-all tests/66-input-fuzz.sh

# make check runs the campaigns short: CHECK_CUTS power cuts (and CHECK_POOL_CUTS with a
# pool of two spares, the second added in the first cut boot), CHECK_CRASH_TRIALS crash
# images, CHECK_FUZZ_INPUTS fuzzed inputs (make powercut, crash-replay and fuzz-inputs
# run them long). The VM suite runs in two one-vCPU VMs side by side (scripts/vm-suite;
# VM_SPLIT=1 VM_CPUS=2 runs it in one VM as make vm-test does); CHECK_VM_TIMEOUT is each
# VM's backstop (each case has its own limit in tests/run-all).
CHECK_CUTS ?= 6
CHECK_POOL_CUTS ?= 4
CHECK_CRASH_TRIALS ?= 12
CHECK_FUZZ_INPUTS ?= 300
CHECK_VM_TIMEOUT ?= 3600
check: deps fmt-check host-test
	touch src/dm_remap.rs && scripts/build-module CLIPPY=1
	VM_TIMEOUT=$(CHECK_VM_TIMEOUT) \
	  VM_SUITE_ENV="CRASH_TRIALS=$(CHECK_CRASH_TRIALS) FUZZ_INPUTS=$(CHECK_FUZZ_INPUTS)" \
	  scripts/vm-suite $(TESTS)
	$(if $(TESTS),$(if $(findstring 16-dashboard,$(TESTS)),tests/dashboard/live),tests/dashboard/live)
	tests/boot/run
	tests/powercut/run.py --cuts $(CHECK_CUTS)
	tests/powercut/run.py --cuts $(CHECK_POOL_CUTS) --spares 2 --add-spare --remove-spare
	scripts/fuzz $(CHECK_FUZZ_SECONDS)

check-debug: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$$(scripts/test-disks)" KERNEL_VARIANT=debug scripts/vm-run tests/run-all $(TESTS)

demo: deps
	cd rust && cargo build --locked
	scripts/vm-run scripts/demo

# The benchmark counts instructions by default (QEMU -icount: the guest clock advances
# with instructions executed); BENCH_CLOCK=wall runs it on the TCG wall clock.
BENCH_CLOCK ?= icount
bench: deps
	cd rust && cargo build --locked
	VM_QEMU_OPTS="$(if $(filter icount,$(BENCH_CLOCK)),-icount shift=0$(comma)sleep=off)" \
	  scripts/vm-run env BENCH_CLOCK=$(BENCH_CLOCK) \
	  $$(env | grep -E '^BENCH_(PAIRS|RUNTIME|CONFIGS|WORKLOADS|SPARE|JOBS|PERF|POOL)=' | tr '\n' ' ') scripts/bench

fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS)

# Installation. The module goes under the kernel release of the tree it was built
# against (KDIR=/lib/modules/$(uname -r)/build for the running kernel); remapctl is
# built with REMAPCTL_PROFILE (release; dev reuses the debug build). It installs no
# packages (unlike the test targets, it does not run scripts/setup-deps): the build
# needs the Rust toolchain, clang/lld and libdevmapper-dev.
DESTDIR ?=
PREFIX ?= /usr
REMAPCTL_PROFILE ?= release
INSTALL_FILES := \
  contrib/udev/69-dm-remap.rules:/usr/lib/udev/rules.d/69-dm-remap.rules \
  contrib/systemd/remapctl-assemble@.service:/usr/lib/systemd/system/remapctl-assemble@.service \
  contrib/systemd/remapctl-monitor.service:/usr/lib/systemd/system/remapctl-monitor.service \
  contrib/modules-load.d/dm-remap.conf:/usr/lib/modules-load.d/dm-remap.conf \
  contrib/modprobe.d/dm-remap.conf:/usr/lib/modprobe.d/dm-remap.conf \
  Documentation/admin-guide.md:/usr/share/doc/dm-remap/admin-guide.md \
  Documentation/on-disk-format.md:/usr/share/doc/dm-remap/on-disk-format.md
install:
	cd rust && cargo build --locked -p remapctl --bin remapctl \
	  $(if $(filter release,$(REMAPCTL_PROFILE)),--release,--profile $(REMAPCTL_PROFILE))
	scripts/install "$(DESTDIR)" "$(PREFIX)" \
	  rust/target/$(if $(filter dev,$(REMAPCTL_PROFILE)),debug,$(REMAPCTL_PROFILE))/remapctl \
	  $(INSTALL_FILES)

uninstall:
	scripts/install --uninstall "$(DESTDIR)" "$(PREFIX)" - $(INSTALL_FILES)

boot-test: deps
	tests/boot/run

clean:
	-[ -d "$$KDIR" ] && $(MAKE) -C "$$KDIR" M=$(CURDIR) clean
	rm -f src/bindings_generated.rs
	cd rust && cargo clean
