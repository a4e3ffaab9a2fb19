# dm-remap top-level Makefile. The module itself is built by Kbuild (see Kbuild);
# these targets wrap the scripts in scripts/.
#
#   make demo      set up, build, and run the narrated demo in the test VM
#   make check     set up, host tests, module build (+clippy, rustfmt), VM tests
#
# KDIR=<tree> builds the module against another CONFIG_RUST kernel tree.

SHELL := /bin/bash
.PHONY: all deps kernel module clippy fmt fmt-check host-test vm-test check demo bench clean

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
	/usr/bin/rustfmt --edition 2021 src/target.rs src/resultbuf.rs src/bindings.rs
	cd rust && cargo fmt

fmt-check: deps
	/usr/bin/rustfmt --edition 2021 --check src/target.rs src/resultbuf.rs src/bindings.rs
	cd rust && cargo fmt --check

host-test: deps
	cd rust && cargo test --locked

vm-test: deps
	scripts/vm-run tests/run-all $(TESTS)

check: deps fmt-check host-test
	touch src/dm_remap.rs && scripts/build-module CLIPPY=1
	scripts/vm-run tests/run-all $(TESTS)

demo: deps
	scripts/vm-run scripts/demo

bench: deps
	scripts/vm-run scripts/bench

clean:
	-[ -d "$$KDIR" ] && $(MAKE) -C "$$KDIR" M=$(CURDIR) clean
	rm -f src/bindings_generated.rs
	cd rust && cargo clean
