# mk/bench.mk: `make bench` -- the driver's own cost per operation
# (instructions counted by valgrind's callgrind, driver code only) and its
# object size, Rust against the unmodified C ptm.c, in one run. Not part of
# `make test`. Prints the table and writes target/bench/bench.md (plus
# target/bench/functions.txt and the raw profiles in target/bench/callgrind).
#
#   make bench     needs valgrind; the C columns need PTM_REFERENCE_C (or
#                  ../shared/reference/ptm.c beside the clone)
#
# The bench crate (tests/bench) is its own cargo workspace, built in its own
# target directory so that it does not fight the test build.

BENCH_DIR := $(CURDIR)/target/bench
BENCH_REFERENCE_C := $(or $(PTM_REFERENCE_C),$(wildcard $(CURDIR)/../shared/reference/ptm.c))

.PHONY: bench

bench: kmod
	PTM_REFERENCE_C=$(BENCH_REFERENCE_C) CARGO_TARGET_DIR=$(BENCH_DIR) \
		$(CARGO) build --locked -q --release --manifest-path tests/bench/Cargo.toml
	PTM_REFERENCE_C=$(BENCH_REFERENCE_C) BENCH_OUT=$(BENCH_DIR) PTM_KMOD=$(CURDIR)/$(KMOD) \
		$(BENCH_DIR)/release/ptm-bench
