# mk/fuzz.mk: fuzzing with cargo-fuzz (fuzz/, its own cargo workspace).
# Not part of `make test`: the first build alone (nightly, sanitizers)
# takes minutes. See fuzz/README.md for long runs.
#
#   make fuzz-smoke   installs cargo-fuzz if missing, builds the
#                     `differential` target and fuzzes it for FUZZ_TIME
#                     seconds (default 60) from the committed seeds, with a
#                     fixed libFuzzer seed (FUZZ_SEED); fails on the first
#                     trace difference, crash or hang
#   make fuzz-run     the same with FUZZ_TIME=0 (no limit) unless given, for
#                     long runs (FUZZ_ARGS='-jobs=2 -workers=2' for both cores)
#
# cargo fuzz has no --locked: `cargo metadata --locked` checks first that
# fuzz/Cargo.lock is up to date, so that a run never rewrites it.
#
# Needs PTM_REFERENCE_C (or ../shared/reference/ptm.c beside the clone): the
# C oracle is what the variants are compared with. Without it both targets
# print a SKIPPED line and succeed.

FUZZ_TOOLCHAIN ?= nightly
FUZZ_TIME ?= 60
FUZZ_SEED ?= 1
FUZZ_ARGS ?=
FUZZ_REFERENCE_C := $(or $(PTM_REFERENCE_C),$(wildcard $(CURDIR)/../shared/reference/ptm.c))
# One op is 4 bytes, plus one mode byte, 64 ops at most (see the target).
FUZZ_LIBFUZZER_ARGS := -max_len=257 -timeout=20 -seed=$(FUZZ_SEED)

.PHONY: fuzz-install fuzz-smoke fuzz-run

fuzz-install:
	@$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-fuzz --locked

define fuzz_differential
	@if [ -z "$(FUZZ_REFERENCE_C)" ]; then \
		echo "SKIPPED: PTM_REFERENCE_C not set ($@)"; \
	else \
		mkdir -p fuzz/corpus/differential && \
		$(CARGO) +$(FUZZ_TOOLCHAIN) metadata --locked --format-version 1 \
			--manifest-path fuzz/Cargo.toml >/dev/null && \
		cd fuzz && PTM_REFERENCE_C=$(abspath $(FUZZ_REFERENCE_C)) \
		$(CARGO) +$(FUZZ_TOOLCHAIN) fuzz run differential \
			corpus/differential seeds/differential -- \
			$(FUZZ_LIBFUZZER_ARGS) -max_total_time=$(1) $(FUZZ_ARGS); \
	fi
endef

fuzz-smoke: fuzz-install
	$(call fuzz_differential,$(FUZZ_TIME))

fuzz-run: fuzz-install
	$(call fuzz_differential,$(if $(filter command line,$(origin FUZZ_TIME)),$(FUZZ_TIME),0))
